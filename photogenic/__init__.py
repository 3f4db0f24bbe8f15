"""photogenic: the Emu quality-tuning recipe as an MLOps pipeline.

The core library (this package) is plain Python with no orchestrator imports: every stage is a
function of a config that reads and writes datasets. ``steps/`` and ``pipelines/`` wrap it for
ZenML; ``dvc.yaml`` runs it as plain processes.
"""

__version__ = "0.1.0"
