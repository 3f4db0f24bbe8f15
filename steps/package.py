"""ZenML step: package the training set (upsampled → training_set), with its dataset card."""

from __future__ import annotations

from typing import Annotated

from zenml import log_metadata, step
from zenml.types import MarkdownString

from photogenic.config import config_from_dict
from photogenic.dataset.atomic import read_text
from photogenic.dataset.ref import DatasetRef
from photogenic.errors import ConfigError
from photogenic.stages.registry import get_stage
from photogenic.stages.runner import run_stage
from photogenic.versioning.restore import ensure_dataset
from steps.settings import step_settings

SPEC = get_stage("package")


@step(enable_cache=True, settings=step_settings(SPEC))
def package(
    dataset: DatasetRef, config: dict, progress: bool = True
) -> tuple[Annotated[DatasetRef, "training_set"], Annotated[MarkdownString, "dataset_card"]]:
    cfg = config_from_dict(config)
    if dataset.name != cfg.package.input:
        raise ConfigError(f"package received dataset {dataset.name!r} but package.input is {cfg.package.input!r}.")
    ensure_dataset(dataset)  # a cached upstream step leaves its dataset where a rerun would
    output = run_stage(SPEC.name, cfg, progress=progress)
    card = output.reports["dataset_card"]
    log_metadata(metadata={"counts": output.stats, "dataset": output.ref.model_dump(),
                           "input_dvc_md5": dataset.dvc_md5, "dataset_card": card})
    # the card as an artifact: the ZenML dashboard renders it as the step's visualisation
    return output.ref, MarkdownString(read_text(card))
