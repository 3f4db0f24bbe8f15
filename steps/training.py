"""ZenML steps: pretrain and quality_tune, logging into ZenML's MLflow experiment tracker.

The tracker (``training.tracking.zenml_tracker``, registered on the local stack by
``pipelines.tracking.ensure_mlflow_stack``) starts the MLflow run before the step body; the
recipe logs into that run. Resources (GPUs, memory) come from ``training.resources``: the
pipeline applies them per run with ``with_options`` (``training_settings``).
"""

from __future__ import annotations

import dataclasses
from typing import Annotated

from zenml import get_step_context, log_metadata, step

from photogenic.config import RunConfig, TrackingConfig, config_from_dict
from photogenic.stages.registry import _training_resources, get_stage
from photogenic.stages.runner import run_stage
from steps.settings import step_settings

TRACKER = TrackingConfig().zenml_tracker


def training_settings(name: str, config: RunConfig) -> dict:
    """Step settings with the resources of this run's config (a Kubeflow stack schedules by them)."""
    return step_settings(dataclasses.replace(get_stage(name), resources=_training_resources(config)))


def _train(name: str, config: dict, progress: bool, resume: bool) -> str:
    cfg = config_from_dict(config)
    run = get_step_context().pipeline_run
    output = run_stage(name, cfg, progress=progress, resume=resume, zenml_run_id=str(run.id))
    summary = output.stats
    log_metadata(metadata={
        "model_dir": output.model, "steps": summary["steps"], "seconds": summary["seconds"],
        "samples_per_second": summary["samples_per_second"], "best_step": summary["best_step"],
        "best_metric": summary["best_metric"], "validations": summary["validations"],
        "mlflow_run_id": summary["mlflow_run_id"], "registered_model": summary["registered_model"],
        "model_version": summary["model_version"], "training_set_dvc_md5": summary["input_dvc_md5"],
        "sample_grids": summary["grids"],
    })
    return output.model


@step(enable_cache=False, settings=step_settings(get_stage("pretrain")), experiment_tracker=TRACKER)
def pretrain(config: dict, progress: bool = True, resume: bool = False) -> Annotated[str, "pretrained_model"]:
    return _train("pretrain", config, progress, resume)


@step(enable_cache=False, settings=step_settings(get_stage("quality_tune")), experiment_tracker=TRACKER)
def quality_tune(pretrained_model: str, config: dict, progress: bool = True,
                 resume: bool = False) -> Annotated[str, "quality_tuned_model"]:
    cfg = config_from_dict(config)
    # train from the model the pretrain step just made, whatever init_from says
    cfg.training.quality_tune.init_from = pretrained_model
    return _train("quality_tune", cfg.resolved(), progress, resume)
