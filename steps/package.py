"""ZenML step: package the training set (upsampled → training_set), with its dataset card."""

from __future__ import annotations

from typing import Annotated

from zenml import step
from zenml.types import MarkdownString

from photogenic.dataset.atomic import read_text
from photogenic.dataset.ref import DatasetRef
from photogenic.stages.package import SPEC
from steps.settings import step_settings
from steps.stage_step import run_dataset_stage


@step(enable_cache=True, settings=step_settings(SPEC))
def package(
    dataset: DatasetRef, config: dict, progress: bool = True, ray_job: str = ""
) -> tuple[Annotated[DatasetRef, "training_set"], Annotated[MarkdownString, "dataset_card"]]:
    """``ray_job``: an image to package as a KubeRay RayJob of (empty: in this step)."""
    output = run_dataset_stage(SPEC, config, dataset, progress, ray_job=ray_job)
    # the card as an artifact: the ZenML dashboard renders it as the step's visualisation
    return output.ref, MarkdownString(read_text(output.reports["dataset_card"]))
