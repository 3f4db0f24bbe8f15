"""ZenML step: the promotion gate over an evaluation's results (after steps/evaluate.py).

Cached on the evaluation's content: the same results give the same decision, already recorded on
the model version. The evaluation pipeline, whose models the config may name by a moving alias,
runs it uncached.
"""

from __future__ import annotations

from typing import Annotated

from zenml import step

from photogenic.config import EvaluateConfig, config_from_dict
from photogenic.dataset.ref import DatasetRef
from photogenic.stages.registry import get_stage
from photogenic.stages.runner import run_stage
from photogenic.versioning.restore import ensure_dataset
from steps.metadata import log_metadata
from steps.settings import EXPERIMENT_TRACKER, tracked_settings

SPEC = get_stage("promote")


# under the experiment tracker: the registry it acts on is the tracking store's
@step(enable_cache=True, settings=tracked_settings(SPEC, None, EvaluateConfig().experiment),
      experiment_tracker=EXPERIMENT_TRACKER)
def promote(evaluation: DatasetRef, config: dict) -> Annotated[dict, "promotion"]:
    ensure_dataset(evaluation)  # the results the gate reads
    decision = run_stage(SPEC.name, config_from_dict(config), inputs={"evaluate.output": evaluation}).stats["promotion"]
    log_metadata(metadata={"promotion": decision})
    return decision
