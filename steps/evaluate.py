"""ZenML step: evaluate a candidate model against a baseline (then steps/promote.py's gate).

In the training pipeline it follows quality_tune: ``evaluate(config, candidate=<the
quality-tuned model's models:/ URI or folder>, baseline=<the pretrained model's, or
models:/<name>@champion>)`` then ``promote(evaluation, config)``. ``evaluate_with_resources``
gives the step the GPU count from ``evaluate.gpus`` for cluster runners.

Not cached: a model named as ``models:/name@alias`` is not content-addressed (the alias moves).
"""

from __future__ import annotations

from typing import Annotated, Optional

from zenml import log_metadata, step
from zenml.types import HTMLString

from photogenic.config import RunConfig, config_from_dict
from photogenic.dataset.atomic import read_text
from photogenic.dataset.ref import DatasetRef
from photogenic.stages.registry import get_stage
from photogenic.stages.runner import run_stage
from steps.settings import step_settings

SPEC = get_stage("evaluate")


@step(enable_cache=False, settings=step_settings(SPEC))
def evaluate(
    config: dict, external_md5s: dict, candidate: Optional[str] = None, baseline: Optional[str] = None,
    progress: bool = True,
) -> tuple[Annotated[DatasetRef, "evaluation"], Annotated[HTMLString, "evaluation_report"]]:
    """``external_md5s``: the prompt file's md5, taken when the pipeline starts (lineage)."""
    cfg = config_from_dict(config)
    # models handed over by the training steps win over the config's
    if candidate:
        cfg.evaluate.candidate = candidate
    if baseline:
        cfg.evaluate.baseline = baseline
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
    return evaluate.with_options(settings=step_settings(SPEC, config))
