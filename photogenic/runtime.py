"""Process environment for runs: where ZenML keeps its state, and keeping tools offline.

The project's ZenML config lives inside the project (``.zen-home``, ignored by git) unless the
user points ``ZENML_CONFIG_PATH`` elsewhere, so a fresh clone runs without ``zenml login``; its
MLflow store is ``mlflow.db`` in the project unless ``MLFLOW_TRACKING_URI`` says otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ZENML_HOME = ".zen-home"
MLFLOW_DB = "mlflow.db"


def prepare_environment(project: str | Path = ".") -> None:
    """Set defaults (never overriding what the user set) before ZenML is imported."""
    home = Path(project).resolve() / PROJECT_ZENML_HOME
    os.environ.setdefault("ZENML_CONFIG_PATH", str(home))
    os.environ.setdefault("ZENML_ANALYTICS_OPT_IN", "false")
    os.environ.setdefault("ZENML_LOGGING_VERBOSITY", "WARN")
    os.environ.setdefault("ZENML_ENABLE_RICH_TRACEBACK", "false")
    # one MLflow store per project, shared by the pipelines' experiment tracker (registered on the
    # local stack with this URI) and the commands that read the registry (lineage, retrain, promote)
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{Path(project).resolve() / MLFLOW_DB}")
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
