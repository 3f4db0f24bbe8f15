"""ZenML step: the promotion gate over an evaluation's results (after steps/evaluate.py).

Not cached: it acts on the model registry as it stands now (the current champion, the aliases).
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

SPEC = get_stage("promote")


@step(enable_cache=False, settings=step_settings(SPEC))
def promote(evaluation: DatasetRef, config: dict) -> Annotated[dict, "promotion"]:
    cfg = config_from_dict(config)
    if evaluation.name != cfg.evaluate.output:
        raise ConfigError(f"promote received {evaluation.name!r} but evaluate.output is {cfg.evaluate.output!r}.")
    ensure_dataset(evaluation)  # the results the gate reads
    decision = run_stage(SPEC.name, cfg).stats["promotion"]
    log_metadata(metadata={"promotion": decision})
    return decision
