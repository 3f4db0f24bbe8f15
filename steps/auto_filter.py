"""ZenML step: the auto-filter cascade over the (versioned) ingested dataset."""

from __future__ import annotations

from typing import Annotated

from zenml import step
from zenml.types import HTMLString

from photogenic.dataset.atomic import read_text
from photogenic.dataset.ref import DatasetRef
from photogenic.stages.auto_filter import SPEC
from steps.settings import step_settings
from steps.stage_step import run_dataset_stage


@step(enable_cache=True, settings=step_settings(SPEC))
def auto_filter(
    dataset: DatasetRef, config: dict, progress: bool = True, ray_job: str = ""
) -> tuple[Annotated[DatasetRef, "candidates"], Annotated[HTMLString, "funnel_report"]]:
    """``ray_job``: an image to run the filter as a KubeRay RayJob of (empty: in this step)."""
    output = run_dataset_stage(SPEC, config, dataset, progress, ray_job=ray_job)
    # the report as an artifact: the ZenML dashboard shows it as the step's HTML visualisation
    return output.ref, HTMLString(read_text(output.reports["funnel_report"]))
