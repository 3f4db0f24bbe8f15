"""ZenML step: upsample the rows under the training resolution (captioned → upsampled).

In a pipeline, give it the run's resources (a GPU when a diffusion checkpoint is configured):
``upsample.with_options(settings=step_settings(SPEC, cfg))(dataset, config=...)``.
"""

from __future__ import annotations

from typing import Annotated

from zenml import step

from photogenic.dataset.ref import DatasetRef
from photogenic.stages.upsample import SPEC
from steps.settings import step_settings
from steps.stage_step import run_dataset_stage


@step(enable_cache=True, settings=step_settings(SPEC))
def upsample(dataset: DatasetRef, config: dict, progress: bool = True,
             ray_job: str = "") -> Annotated[DatasetRef, "upsampled"]:
    """``ray_job``: an image to upsample as a KubeRay RayJob of (empty: in this step)."""
    return run_dataset_stage(SPEC, config, dataset, progress, ray_job=ray_job).ref
