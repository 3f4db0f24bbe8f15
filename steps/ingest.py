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


@step(enable_cache=True, settings=step_settings(SPEC))
def ingest(config: dict, external_md5s: dict, progress: bool = True) -> Annotated[DatasetRef, "ingested_dataset"]:
    """``external_md5s``: the sources' md5s, taken when the pipeline starts; a parameter, so that
    a changed shard changes the step's cache key (the config alone names the sources, not their bytes)."""
    output = run_stage(SPEC.name, config_from_dict(config), progress=progress)
    log_metadata(metadata={"counts": output.stats, "dataset": output.ref.model_dump(), "config": config,
                           "external_md5s": external_md5s})
    return output.ref
