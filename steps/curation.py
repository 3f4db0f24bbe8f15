"""ZenML step: the two human curation stages over the (versioned) candidate pool."""

from __future__ import annotations

from typing import Annotated

from zenml import log_metadata, step

from photogenic.config import config_from_dict
from photogenic.dataset.ref import DatasetRef
from photogenic.errors import ConfigError
from photogenic.stages.registry import get_stage
from photogenic.stages.runner import run_stage
from steps.settings import step_settings

SPEC = get_stage("curation")


@step(enable_cache=False, settings=step_settings(SPEC))
def curation(dataset: DatasetRef, config: dict, progress: bool = True) -> Annotated[DatasetRef, "curated"]:
    cfg = config_from_dict(config)
    if dataset.name != cfg.curation.input:
        raise ConfigError(f"curation received dataset {dataset.name!r} but curation.input is {cfg.curation.input!r}.")
    output = run_stage(SPEC.name, cfg, progress=progress)
    log_metadata(metadata={"curation": output.stats, "dataset": output.ref.model_dump(),
                           "input_dvc_md5": dataset.dvc_md5})
    return output.ref
