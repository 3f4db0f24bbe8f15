"""ZenML step: ingest the configured sources into a dataset."""

from __future__ import annotations

from typing import Annotated

from zenml import step

from photogenic.dataset.ref import DatasetRef
from photogenic.stages.ingest import SPEC
from steps.settings import step_settings
from steps.stage_step import run_dataset_stage


@step(enable_cache=True, settings=step_settings(SPEC))
def ingest(config: dict, external_md5s: dict, progress: bool = True,
           ray_job: str = "") -> Annotated[DatasetRef, "ingested_dataset"]:
    """``external_md5s``: the sources' md5s, taken when the pipeline starts; a parameter, so that
    a changed shard changes the step's cache key (the config alone names the sources, not their bytes).
    ``ray_job``: an image to run ingest as a KubeRay RayJob of (empty: in this step); the job reads
    the sources as its pods see them (in the image, or object-store URLs)."""
    return run_dataset_stage(SPEC, config, None, progress, {"config": config, "external_md5s": external_md5s},
                             ray_job=ray_job).ref
