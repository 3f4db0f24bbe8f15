"""MLflow tracking for training runs: params, metrics, sample grids, the model and its registry entry.

Under ZenML, the step's MLflow experiment tracker has already started a run; training logs into
that one. In a plain run (``photogenic step pretrain``) a run is started here, against
``training.tracking.tracking_uri``, else ``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``
in the working directory (the project folder, where it is git-ignored).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

from photogenic.safety.secrets import mlflow_credentials_to_environment, redact_tree
from photogenic.tracking_server import require_reachable

log = logging.getLogger(__name__)

DEFAULT_URI = "sqlite:///mlflow.db"


def configured_uri(tracking_cfg) -> str | None:
    """``training.tracking.tracking_uri``, else ``$MLFLOW_TRACKING_URI``, without credentials: a
    ``user:password@`` in the environment's URI moves to MLFLOW_TRACKING_USERNAME/PASSWORD, so
    that the URI can be logged and stored (the config's own URI cannot hold one)."""
    uri = tracking_cfg.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    return mlflow_credentials_to_environment(uri) if uri else None


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = str(value)[:6000]  # MLflow's limit on a param value
    return flat


class Tracker:
    """What the trainer reports to. This one logs to the active MLflow run; params and tags are
    stored on the tracking server for good, so a URI's credentials are redacted from them."""

    def __init__(self, mlflow_module, run_id: str):
        self.mlflow = mlflow_module
        self.run_id = run_id

    def log_params(self, params: dict[str, Any]) -> None:
        self.mlflow.log_params(redact_tree(_flatten(params)))

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self.mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)

    def log_image(self, path: str, folder: str) -> None:
        self.mlflow.log_artifact(path, artifact_path=folder)

    def set_tags(self, tags: dict[str, str]) -> None:
        self.mlflow.set_tags(redact_tree({k: v for k, v in tags.items() if v is not None}))

    def log_model(self, folder: str, registered_model: str | None, tags: dict[str, str]) -> str | None:
        """Upload the pipeline folder as the run's ``model`` artifact and, if asked, register it
        as a new version of ``registered_model`` carrying ``tags``; returns the version."""
        self.mlflow.log_artifacts(folder, artifact_path="model")
        if not registered_model:
            return None
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        client = MlflowClient()
        with contextlib.suppress(MlflowException):  # already registered
            client.create_registered_model(registered_model, description="photogenic text-to-image models "
                                           "(diffusers pipeline folders)")
        source = f"{self.mlflow.get_artifact_uri('model')}"
        version = client.create_model_version(registered_model, source=source, run_id=self.run_id,
                                              tags={k: v for k, v in tags.items() if v is not None})
        return str(version.version)


class NullTracker:
    """For code paths that train without tracking (the benchmark)."""

    run_id = None

    def log_params(self, params): ...
    def log_metrics(self, metrics, step): ...
    def log_image(self, path, folder): ...
    def set_tags(self, tags): ...
    def log_model(self, folder, registered_model, tags): return None


@contextlib.contextmanager
def tracking_run(tracking_cfg, run_name: str) -> Iterator[Tracker]:
    """The active MLflow run (ZenML's) if there is one, else a new run in the configured store."""
    import mlflow

    from photogenic.training.distributed import is_main_process

    if not is_main_process():  # under DDP one process tracks and registers
        yield NullTracker()
        return
    active = mlflow.active_run()
    if active is not None:
        yield Tracker(mlflow, active.info.run_id)
        return
    uri = configured_uri(tracking_cfg) or DEFAULT_URI
    if uri.startswith("file:") or "://" not in uri:
        # MLflow 3 refuses a file store unless asked; the tests' isolated homes use one on purpose
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    require_reachable(uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(tracking_cfg.experiment)
    with mlflow.start_run(run_name=run_name) as run:
        log.info("MLflow run %s in %s (experiment %s)", run.info.run_id, uri, tracking_cfg.experiment)
        yield Tracker(mlflow, run.info.run_id)
