"""ZenML step: choose every curated image's training caption."""

from __future__ import annotations

from typing import Annotated

from zenml import step

from photogenic.dataset.ref import DatasetRef
from photogenic.stages.caption import SPEC
from steps.settings import step_settings
from steps.stage_step import run_dataset_stage


@step(enable_cache=True, settings=step_settings(SPEC))
def caption(dataset: DatasetRef, config: dict, progress: bool = True,
            ray_job: str = "") -> Annotated[DatasetRef, "captioned"]:
    """``ray_job``: an image to caption as a KubeRay RayJob of (empty: in this step)."""
    return run_dataset_stage(SPEC, config, dataset, progress, ray_job=ray_job).ref
