"""ZenML step: version a stage's output with DVC and record which run made it."""

from __future__ import annotations

from typing import Annotated

from zenml import get_step_context, step

from photogenic.config import config_from_dict
from photogenic.dataset.ref import DatasetRef
from photogenic.versioning.record import version_output
from steps.metadata import log_metadata


@step(enable_cache=True)
def version_dataset(dataset: DatasetRef, config: dict, stage: str) -> Annotated[DatasetRef, "versioned_dataset"]:
    cfg = config_from_dict(config)
    if not cfg.dvc.enabled:
        log_metadata(metadata={"dvc": "not versioned: dvc.enabled is false in this run's config"})
        return dataset
    run = get_step_context().pipeline_run
    versioned = version_output(stage, dataset, cfg, run={"runner": "zenml", "id": str(run.id), "name": run.name})
    log_metadata(metadata={"dvc_md5": versioned.dvc_md5, "dvc_pushed": cfg.dvc.push, "dataset": versioned.model_dump()})
    return versioned
