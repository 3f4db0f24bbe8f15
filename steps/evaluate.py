"""ZenML step: evaluate a candidate model against a baseline (then steps/promote.py's gate).

In the training pipeline it follows quality_tune: ``evaluate(candidate=<the quality-tuned
model>, baseline=<the pretrained model>)``, both TrainedModel artifacts, so the cache keys it on
their content; then ``promote(evaluation, config)``. ``evaluate_with_resources`` gives the step
the GPU count from ``evaluate.gpus`` for cluster runners.

The evaluation pipeline names its models in the config instead, possibly as
``models:/name@alias``, which is not content-addressed (the alias moves): it runs this step
uncached.
"""

from __future__ import annotations

from typing import Annotated, Optional

from zenml import step
from zenml.types import HTMLString

from photogenic.config import EvaluateConfig, RunConfig, config_from_dict
from photogenic.dataset.atomic import read_text
from photogenic.dataset.ref import DatasetRef
from photogenic.stages.registry import get_stage
from photogenic.stages.runner import run_stage
from photogenic.training.artifact import TrainedModel, ensure_model
from steps.metadata import log_metadata
from steps.settings import EXPERIMENT_TRACKER, tracked_settings

SPEC = get_stage("evaluate")


@step(enable_cache=True, settings=tracked_settings(SPEC, None, EvaluateConfig().experiment),
      experiment_tracker=EXPERIMENT_TRACKER)
def evaluate(
    config: dict, external_md5s: dict, candidate: Optional[TrainedModel] = None,
    baseline: Optional[TrainedModel] = None, progress: bool = True,
) -> tuple[Annotated[DatasetRef, "evaluation"], Annotated[HTMLString, "evaluation_report"]]:
    """``external_md5s``: the prompt file's md5, taken when the pipeline starts (cache key, lineage)."""
    cfg = config_from_dict(config)
    # models handed over by the training steps win over the config's
    for model, key in ((candidate, "candidate"), (baseline, "baseline")):
        if model is not None:
            ensure_model(model)  # a cached training step leaves its model where a rerun would
            setattr(cfg.evaluate, key, model.uri)
    output = run_stage(SPEC.name, cfg, progress=progress)
    report = output.reports["evaluation_report"]
    log_metadata(metadata={"headline": output.stats["headline"], "fid": output.stats["fid"] or {},
                           "mlflow_run_id": output.stats["mlflow_run_id"] or "", "dataset": output.ref.model_dump(),
                           "candidate": cfg.evaluate.candidate, "baseline": cfg.evaluate.baseline,
                           "external_md5s": external_md5s,
                           "evaluation_report": report})
    return output.ref, HTMLString(read_text(report))


def evaluate_with_resources(config: RunConfig):
    """The evaluate step with the GPUs ``evaluate.gpus`` asks for (0: none)."""
    return evaluate.with_options(settings=tracked_settings(SPEC, config, config.evaluate.experiment))
