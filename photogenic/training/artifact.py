"""TrainedModel: what a training step hands to the next step (and ZenML stores for lineage).

A model folder's path alone would make a poor artifact: the ZenML cache keys a step on its input
artifacts' content hashes, and a retrained model lands at the same path. So the reference carries
the sha256 of the folder's files, and the registry version the stage created. A cached step
returns its reference without running, so ``ensure_model`` checks that the folder on disk is
still that model and, when it is not, downloads it back from the MLflow run that logged it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil

from pydantic import BaseModel

from photogenic.errors import DataError

log = logging.getLogger(__name__)


class TrainedModel(BaseModel):
    """One trained model: its diffusers pipeline folder and where the registry keeps it."""

    #: the model's name (its folder under <data.root>/models)
    name: str
    path: str
    #: sha256 over the folder's files (relative path and bytes), see ``folder_hash``
    content_hash: str
    mlflow_run_id: str | None = None
    registered_model: str | None = None
    model_version: str | None = None

    @property
    def uri(self) -> str:
        """``models:/<name>/<version>`` when registered (the evaluation then reads the registry's
        lineage tags and the promotion gate can alias that version), else the folder."""
        if self.registered_model and self.model_version:
            return f"models:/{self.registered_model}/{self.model_version}"
        return self.path


def folder_hash(folder: str) -> str:
    digest = hashlib.sha256()
    for base, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(base, name)
            digest.update(os.path.relpath(path, folder).encode() + b"\0")
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            digest.update(b"\0")
    return digest.hexdigest()


def trained_model(name: str, path: str, summary: dict) -> TrainedModel:
    """The reference for the model a training stage just saved at ``path``."""
    return TrainedModel(name=name, path=path, content_hash=folder_hash(path), mlflow_run_id=summary.get("mlflow_run_id"),
                        registered_model=summary.get("registered_model"), model_version=summary.get("model_version"))


def ensure_model(model: TrainedModel) -> str:
    """"present" when ``model.path`` holds that model, "restored" after downloading it from its
    MLflow run; DataError when neither is possible."""
    if os.path.isdir(model.path) and folder_hash(model.path) == model.content_hash:
        return "present"
    if not model.mlflow_run_id:
        raise DataError(f"Model {model.name!r} at {model.path} is missing or another version than the one this run "
                        "refers to, and no MLflow run logged it. Rerun without the step cache "
                        "(`photogenic run --no-cache`).")
    staging = _download(model.name, model.path, model.mlflow_run_id)
    if folder_hash(staging) != model.content_hash:
        shutil.rmtree(f"{model.path}.restoring", ignore_errors=True)
        raise DataError(f"The model logged by MLflow run {model.mlflow_run_id} is not the one this run refers to "
                        f"(content sha256 {model.content_hash}).")
    _swap_in(staging, model.path)
    log.info("restored model %s from MLflow run %s", model.name, model.mlflow_run_id)
    return "restored"


def model_from_run(name: str, path: str, run_id: str) -> TrainedModel:
    """The model MLflow run ``run_id`` logged, downloaded to ``path``, with the registry version
    made from that run: what a task that had the model trained elsewhere (a Kubeflow Trainer
    job's nodes) hands on."""
    from mlflow import MlflowClient

    _swap_in(_download(name, path, run_id), path)
    versions = MlflowClient().search_model_versions(f"run_id = '{run_id}'")
    version = max(versions, key=lambda v: int(v.version)) if versions else None
    return TrainedModel(name=name, path=path, content_hash=folder_hash(path), mlflow_run_id=run_id,
                        registered_model=version.name if version else None,
                        model_version=str(version.version) if version else None)


def _download(name: str, path: str, run_id: str) -> str:
    """Run ``run_id``'s ``model`` artifact in a folder beside ``path``; DataError on failure."""
    import mlflow.artifacts

    staging = f"{path}.restoring"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        return mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="model", dst_path=staging)
    except Exception as exc:  # noqa: BLE001 - any store failure means the same to the user
        shutil.rmtree(staging, ignore_errors=True)
        raise DataError(f"Model {name!r}: downloading it from MLflow run {run_id} failed: {exc}") from None


def _swap_in(downloaded: str, path: str) -> None:
    """``downloaded`` becomes ``path``, the whole folder at once."""
    backup = f"{path}.replaced"
    shutil.rmtree(backup, ignore_errors=True)
    if os.path.exists(path):
        os.rename(path, backup)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    os.rename(downloaded, path)
    shutil.rmtree(f"{path}.restoring", ignore_errors=True)
    shutil.rmtree(backup, ignore_errors=True)
