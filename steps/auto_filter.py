"""ZenML step: the auto-filter cascade over the (versioned) ingested dataset."""

from __future__ import annotations

from typing import Annotated

from zenml import log_metadata, step
from zenml.types import HTMLString

from photogenic.config import config_from_dict
from photogenic.dataset.atomic import read_text
from photogenic.dataset.ref import DatasetRef
from photogenic.errors import ConfigError
from photogenic.stages.registry import get_stage
from photogenic.stages.runner import run_stage
from photogenic.versioning.restore import ensure_dataset
from steps.settings import step_settings

SPEC = get_stage("auto_filter")


@step(enable_cache=True, settings=step_settings(SPEC))
def auto_filter(
    dataset: DatasetRef, config: dict, progress: bool = True
) -> tuple[Annotated[DatasetRef, "candidates"], Annotated[HTMLString, "funnel_report"]]:
    cfg = config_from_dict(config)
    if dataset.name != cfg.filter.input:
        raise ConfigError(f"auto_filter received dataset {dataset.name!r} but filter.input is {cfg.filter.input!r}.")
    ensure_dataset(dataset)  # a cached upstream step leaves its dataset where a rerun would
    output = run_stage(SPEC.name, cfg, progress=progress)
    report = output.reports["funnel_report"]
    log_metadata(metadata={"funnel": output.stats["funnel"], "rejections": output.stats["rejections"],
                           "dataset": output.ref.model_dump(), "input_dvc_md5": dataset.dvc_md5,
                           "funnel_report": report})
    # the report as an artifact: the ZenML dashboard shows it as the step's HTML visualisation
    return output.ref, HTMLString(read_text(report))
