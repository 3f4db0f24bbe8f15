"""ZenML step: ingest the configured sources into a dataset."""

from __future__ import annotations

from typing import Annotated

from zenml import step

from photogenic.dataset.ref import DatasetRef
from photogenic.stages.ingest import SPEC
from steps.settings import step_settings
from steps.stage_step import run_dataset_stage


@step(enable_cache=True, settings=step_settings(SPEC))
def ingest(config: dict, external_md5s: dict, progress: bool = True) -> Annotated[DatasetRef, "ingested_dataset"]:
    """``external_md5s``: the sources' md5s, taken when the pipeline starts; a parameter, so that
    a changed shard changes the step's cache key (the config alone names the sources, not their bytes)."""
    return run_dataset_stage(SPEC, config, None, progress, {"config": config, "external_md5s": external_md5s}).ref
