"""ZenML step: the two human curation stages over the (versioned) candidate pool."""

from __future__ import annotations

from typing import Annotated

from zenml import step

from photogenic.dataset.ref import DatasetRef
from photogenic.stages.curation import SPEC
from steps.settings import step_settings
from steps.stage_step import run_dataset_stage


@step(enable_cache=True, settings=step_settings(SPEC))
def curation(
    dataset: DatasetRef, config: dict, external_md5s: dict, progress: bool = True
) -> Annotated[DatasetRef, "curated"]:
    """``external_md5s``: the people's annotation exports' md5s (or the ground truth the SIMULATED
    annotators read), taken when the pipeline starts, so a new export re-runs the step."""
    return run_dataset_stage(SPEC, config, dataset, progress, {"external_md5s": external_md5s}).ref
