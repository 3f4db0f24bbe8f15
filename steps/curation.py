"""ZenML step: the two human curation stages over the (versioned) candidate pool."""

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

SPEC = get_stage("curation")


@step(enable_cache=True, settings=step_settings(SPEC))
def curation(
    dataset: DatasetRef, config: dict, external_md5s: dict, progress: bool = True
) -> Annotated[DatasetRef, "curated"]:
    """``external_md5s``: the people's annotation exports' md5s (or the ground truth the SIMULATED
    annotators read), taken when the pipeline starts, so a new export re-runs the step."""
    cfg = config_from_dict(config)
    if dataset.name != cfg.curation.input:
        raise ConfigError(f"curation received dataset {dataset.name!r} but curation.input is {cfg.curation.input!r}.")
    ensure_dataset(dataset)  # a cached upstream step leaves its dataset where a rerun would
    output = run_stage(SPEC.name, cfg, progress=progress)
    log_metadata(metadata={"curation": output.stats, "dataset": output.ref.model_dump(),
                           "input_dvc_md5": dataset.dvc_md5,
                           "external_md5s": external_md5s})
    return output.ref
