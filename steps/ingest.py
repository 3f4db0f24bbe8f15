"""ZenML step: ingest the configured sources into a dataset."""

from __future__ import annotations

from typing import Annotated

from zenml import log_metadata, step

from photogenic.config import config_from_dict
from photogenic.dataset.ref import DatasetRef
from photogenic.stages.registry import get_stage
from photogenic.stages.runner import run_stage
from steps.settings import step_settings

SPEC = get_stage("ingest")


@step(enable_cache=False, settings=step_settings(SPEC))
def ingest(config: dict, progress: bool = True) -> Annotated[DatasetRef, "ingested_dataset"]:
    output = run_stage(SPEC.name, config_from_dict(config), progress=progress)
    log_metadata(metadata={"counts": output.stats, "dataset": output.ref.model_dump(), "config": config})
    return output.ref
