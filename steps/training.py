"""ZenML steps: pretrain and quality_tune, logging into ZenML's MLflow experiment tracker.

The tracker (``training.tracking.zenml_tracker``, registered on the local stack by
``pipelines.tracking.ensure_mlflow_stack``) starts the MLflow run before the step body; the
recipe logs into that run. Resources (GPUs, memory) come from ``training.resources``: the
pipeline applies them per run with ``with_options`` (``training_settings``).
"""

from __future__ import annotations

from typing import Annotated

from zenml import get_step_context, log_metadata, step

from photogenic.config import RunConfig, TrackingConfig, config_from_dict
from photogenic.stages.registry import get_stage
from photogenic.stages.runner import run_stage
from steps.settings import step_settings

TRACKER = TrackingConfig().zenml_tracker


def training_settings(name: str, config: RunConfig | None = None) -> dict:
    """Step settings with the resources of this run's config (a Kubeflow stack schedules by them),
    and an MLflow run of the step's own, nested in the pipeline run's (ZenML's tracker otherwise
    logs every step of a pipeline run into one MLflow run, where the two stages' params clash)."""
    from zenml.integrations.mlflow.flavors.mlflow_experiment_tracker_flavor import MLFlowExperimentTrackerSettings

    tracking = config.training.tracking if config is not None else TrackingConfig()
    return {
        **step_settings(get_stage(name), config),
        "experiment_tracker": MLFlowExperimentTrackerSettings(nested=True, experiment_name=tracking.experiment),
    }


def _train(name: str, config: dict, progress: bool, resume: bool) -> str:
    cfg = config_from_dict(config)
    run = get_step_context().pipeline_run
    output = run_stage(name, cfg, progress=progress, resume=resume, zenml_run_id=str(run.id))
    summary = output.stats
    log_metadata(metadata={key: value for key, value in {
        "model_dir": output.model, "steps": summary["steps"], "seconds": summary["seconds"],
        "samples_per_second": summary["samples_per_second"], "best_step": summary["best_step"],
        "best_metric": summary["best_metric"], "validations": summary["validations"],
        "mlflow_run_id": summary["mlflow_run_id"], "registered_model": summary["registered_model"],
        "model_version": summary["model_version"], "training_set_dvc_md5": summary["input_dvc_md5"],
        "sample_grids": summary["grids"],
    }.items() if value is not None})
    return output.model


@step(enable_cache=False, settings=training_settings("pretrain"), experiment_tracker=TRACKER)
def pretrain(config: dict, progress: bool = True, resume: bool = False) -> Annotated[str, "pretrained_model"]:
    return _train("pretrain", config, progress, resume)


@step(enable_cache=False, settings=training_settings("quality_tune"), experiment_tracker=TRACKER)
def quality_tune(pretrained_model: str, config: dict, progress: bool = True,
                 resume: bool = False) -> Annotated[str, "quality_tuned_model"]:
    cfg = config_from_dict(config)
    # train from the model the pretrain step just made, whatever init_from says
    cfg.training.quality_tune.init_from = pretrained_model
    return _train("quality_tune", cfg.resolved(), progress, resume)
