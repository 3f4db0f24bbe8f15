"""What every dataset stage's ZenML step does, once: restore the input dataset a cached upstream
step left (where a rerun would find it), run the stage on that DatasetRef, and record its counts,
dataset and reports on the step. The steps (steps/<stage>.py) only declare their typed outputs.

With ``ray_job`` (an image; ``photogenic run --ray-job IMAGE``) a data-plane stage runs as a
KubeRay RayJob of that image instead of in this process (photogenic.kfp.rayjob_stage)."""

from __future__ import annotations

from typing import Any

from photogenic.config import config_from_dict
from photogenic.dataset.ref import DatasetRef
from photogenic.stages.runner import run_stage
from photogenic.stages.spec import StageOutput, StageSpec
from photogenic.versioning.restore import ensure_dataset
from steps.metadata import log_metadata


def run_dataset_stage(spec: StageSpec, config: dict, dataset: DatasetRef | None = None, progress: bool = True,
                      metadata: dict[str, Any] | None = None, ray_job: str = "") -> StageOutput:
    """Run ``spec``'s stage with the step's ``config`` on ``dataset`` (its input artifact; None
    for a stage reading sources). ``metadata``: what the step records besides the stage's own.
    ``ray_job``: the image of the RayJob the stage runs as (empty: here)."""
    inputs, metadata = {}, dict(metadata or {})
    if dataset is not None:
        ensure_dataset(dataset)  # a cached upstream step leaves its dataset where a rerun would
        inputs[spec.inputs[0]] = dataset
        metadata["input_dvc_md5"] = dataset.dvc_md5
    if ray_job:
        from photogenic.kfp.rayjob_stage import run_stage_as_rayjob  # the Kubernetes client: only when asked

        output = run_stage_as_rayjob(spec.name, config_from_dict(config), inputs, ray_job)
    else:
        output = run_stage(spec.name, config_from_dict(config), progress=progress, inputs=inputs)
    log_metadata(metadata={**output.stats, "dataset": output.ref.model_dump(), **output.reports, **metadata})
    return output
