"""The models under evaluation: where their pipeline folder is, and what the registry knows.

A model is named in the config or on the command line by one of:

- a model name a training stage wrote (``pretrained``, ``quality_tuned``: a folder under
  ``<data.root>/models``), resolved to the registry version recorded beside it when it was registered;
- a diffusers pipeline folder (a path, relative ones under ``data.root``);
- ``models:/<registered name>/<version>`` or ``models:/<registered name>@<alias>``: a version in
  the MLflow model registry (tracking URI from ``MLFLOW_TRACKING_URI``). Its ``source`` is the
  pipeline folder (downloaded through MLflow when it is not a local folder), its ``run_id``
  leads to the training run's curves and parameters, and its tags are its lineage.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from typing import Any

from photogenic.errors import ConfigError, DataError
from photogenic.paths import model_dir, under_root

log = logging.getLogger(__name__)

_REGISTRY_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[A-Za-z0-9_-]+))$")


@dataclass
class ModelRef:
    #: the label the evaluation uses for this model (e.g. "candidate", "baseline")
    label: str
    #: the local diffusers pipeline folder
    path: str
    #: the spec it was resolved from (a folder or a models:/ URI)
    spec: str
    registered_name: str | None = None
    version: str | None = None
    run_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "path": self.path, "spec": self.spec, "registered_name": self.registered_name,
                "version": self.version, "run_id": self.run_id, "tags": dict(self.tags)}


def check_pipeline_folder(folder: str) -> None:
    if not os.path.isdir(folder):
        raise DataError(f"The model folder {folder} does not exist. Point evaluate.candidate / evaluate.baseline "
                        "(or the command's arguments) at a diffusers pipeline folder or a models:/ URI.")
    if not os.path.isfile(os.path.join(folder, "model_index.json")):
        raise DataError(f"The folder {folder} is not a diffusers pipeline: it has no model_index.json "
                        "(save models with pipeline.save_pretrained(folder)).")


def resolve_model(spec: str, label: str, data_root: str | None = None) -> ModelRef:
    """A ``ModelRef`` for a folder or a ``models:/`` URI (see the module docstring)."""
    match = _REGISTRY_URI.match(spec)
    if match is None:
        trained = _trained_model_folder(spec, data_root)
        if trained is not None:
            registered = _registered_version(trained)
            if registered is not None:
                # the registry version the training stage created: its lineage tags, and a version
                # the promotion gate can alias
                return resolve_model(registered, label, data_root)
            path = trained
        else:
            path = under_root(data_root, spec, f"{label} model folder") if data_root else spec
        check_pipeline_folder(path)
        return ModelRef(label=label, path=path, spec=spec)
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    name = match["name"]
    try:
        mv = (client.get_model_version(name, match["version"]) if match["version"]
              else client.get_model_version_by_alias(name, match["alias"]))
    except MlflowException as exc:
        raise_if_store_unusable(exc)
        raise DataError(f"The model {spec} is not in the MLflow registry at {_tracking_uri()}: "
                        f"{exc.message if hasattr(exc, 'message') else exc}") from None
    path = mv.source
    if path.startswith("file://"):
        path = path[len("file://"):]
    if not os.path.isdir(path):
        import mlflow.artifacts

        path = mlflow.artifacts.download_artifacts(artifact_uri=mv.source)
    check_pipeline_folder(path)
    return ModelRef(label=label, path=path, spec=spec, registered_name=name, version=str(mv.version),
                    run_id=mv.run_id, tags=dict(mv.tags or {}))


def _trained_model_folder(spec: str, data_root: str | None) -> str | None:
    """A model name a training stage wrote (``training.*.output``: a folder under <data.root>/models)."""
    if not data_root or "/" in spec or os.sep in spec:
        return None

    folder = model_dir(data_root, spec)
    return folder if os.path.isdir(folder) else None


def _registered_version(folder: str) -> str | None:
    """``models:/name/version`` from the training summary beside the folder, when it registered one."""
    import json

    try:
        with open(f"{folder}.json", encoding="utf-8") as handle:
            summary = json.load(handle)
    except (OSError, ValueError):
        return None
    if summary.get("registered_model") and summary.get("model_version"):
        return f"models:/{summary['registered_model']}/{summary['model_version']}"
    return None


def raise_if_store_unusable(exc: Exception) -> None:
    """MLflow 3 refuses a file-store tracking URI unless opted in: say so, not 'model not found'."""
    if "MLFLOW_ALLOW_FILE_STORE" in str(exc):
        raise ConfigError(f"The MLflow tracking URI {_tracking_uri()} is a file store, which MLflow refuses unless "
                          "MLFLOW_ALLOW_FILE_STORE=true is set; set it, or point MLFLOW_TRACKING_URI at a database "
                          "(sqlite:///mlflow.db) or a tracking server.") from None


def _tracking_uri() -> str:
    import mlflow

    return mlflow.get_tracking_uri()


def training_curves(run_id: str | None, max_metrics: int = 6) -> dict[str, list[tuple[int, float]]]:
    """The metric histories of a training run (step, value), for the report; empty without a run."""
    if not run_id:
        return {}
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    try:
        run = client.get_run(run_id)
    except MlflowException as exc:
        log.warning("training run %s not found in MLflow (%s): no curves in the report", run_id, exc)
        return {}
    curves = {}
    for key in sorted(run.data.metrics)[:max_metrics]:
        history = client.get_metric_history(run_id, key)
        curves[key] = sorted((int(m.step), float(m.value)) for m in history)
    return curves


def run_params(run_id: str | None) -> dict[str, str]:
    if not run_id:
        return {}
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return dict(MlflowClient().get_run(run_id).data.params)
    except MlflowException:
        return {}
