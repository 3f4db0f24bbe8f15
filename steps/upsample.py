"""ZenML step: upsample the rows under the training resolution (captioned → upsampled).

In a pipeline, give it the run's resources (a GPU when a diffusion checkpoint is configured):
``upsample.with_options(settings=step_settings(SPEC, cfg))(dataset, config=...)``.
"""

from __future__ import annotations

from typing import Annotated

from zenml import log_metadata, step

from photogenic.config import config_from_dict
from photogenic.dataset.ref import DatasetRef
from photogenic.errors import ConfigError
from photogenic.stages.registry import get_stage
from photogenic.stages.runner import run_stage
from photogenic.versioning.restore import ensure_dataset
from steps.settings import step_settings

SPEC = get_stage("upsample")


@step(enable_cache=True, settings=step_settings(SPEC))
def upsample(dataset: DatasetRef, config: dict, progress: bool = True) -> Annotated[DatasetRef, "upsampled"]:
    cfg = config_from_dict(config)
    if dataset.name != cfg.upsample.input:
        raise ConfigError(f"upsample received dataset {dataset.name!r} but upsample.input is {cfg.upsample.input!r}.")
    ensure_dataset(dataset)  # a cached upstream step leaves its dataset where a rerun would
    output = run_stage(SPEC.name, cfg, progress=progress)
    log_metadata(metadata={"counts": output.stats, "dataset": output.ref.model_dump(),
                           "input_dvc_md5": dataset.dvc_md5})
    return output.ref
