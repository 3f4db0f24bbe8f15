"""ZenML pipelines composed of the steps in steps/."""
