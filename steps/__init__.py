"""ZenML steps: thin wrappers that call the core library and attach metadata."""
