"""ZenML step: a stage output's Great Expectations gate. A failure stops the pipeline."""

from __future__ import annotations

from typing import Annotated

from zenml import step

from photogenic.config import config_from_dict
from photogenic.dataset.ref import DatasetRef
from photogenic.stages.runner import check_output
from steps.metadata import log_metadata


@step(enable_cache=True)
def quality_gate(dataset: DatasetRef, config: dict, stage: str) -> Annotated[DatasetRef, "gated_dataset"]:
    result = check_output(stage, dataset, config_from_dict(config), raise_on_failure=False)
    if result is not None:
        log_metadata(metadata={"quality_gate": result.to_dict()})
        result.raise_for_failure()
    return dataset
