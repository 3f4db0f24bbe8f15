"""ZenML steps: pretrain and quality_tune, logging into ZenML's MLflow experiment tracker.

Each takes the versioned dataset it trains on (and quality_tune the pretrained model) as
artifacts, so ZenML's cache keys them on that content: rerunning with nothing changed skips
training, a changed training set or recipe retrains. The tracker (``training.tracking.zenml_tracker``,
registered on the local stack by ``pipelines.tracking.ensure_mlflow_stack``) starts the MLflow
run before the step body; the recipe logs into that run. Resources (GPUs, memory) come from
``training.resources``: the pipeline applies them per run with ``with_options`` (``training_settings``).
"""

from __future__ import annotations

from typing import Annotated

from zenml import get_step_context, step

from photogenic.config import RunConfig, TrackingConfig, config_from_dict
from photogenic.dataset.ref import DatasetRef
from photogenic.errors import ConfigError
from photogenic.stages.registry import get_stage
from photogenic.stages.training import train_with_lineage
from photogenic.training.artifact import TrainedModel, ensure_model
from photogenic.versioning.restore import ensure_dataset
from steps.metadata import log_metadata
from steps.settings import EXPERIMENT_TRACKER, tracked_settings


def training_settings(name: str, config: RunConfig | None = None) -> dict:
    """Step settings with the resources of this run's config (a Kubeflow stack schedules by them),
    tracked into ``training.tracking.experiment``."""
    tracking = config.training.tracking if config is not None else TrackingConfig()
    return tracked_settings(get_stage(name), config, tracking.experiment)


def _train(name: str, cfg: RunConfig, dataset: DatasetRef, external_md5s: dict, progress: bool,
           resume: bool) -> TrainedModel:
    recipe = getattr(cfg.training, name)
    if dataset.name != recipe.input:
        raise ConfigError(f"{name} received dataset {dataset.name!r} but training.{name}.input is {recipe.input!r}.")
    ensure_dataset(dataset)  # a cached upstream step leaves its dataset where a rerun would
    run = get_step_context().pipeline_run
    model, output = train_with_lineage(name, cfg, dataset, {"runner": "zenml", "id": str(run.id), "name": run.name},
                                       external_md5s, progress=progress, resume=resume)
    summary = output.stats
    log_metadata(metadata={key: value for key, value in {
        "model": model.model_dump(), "steps": summary["steps"], "seconds": summary["seconds"],
        "samples_per_second": summary["samples_per_second"], "best_step": summary["best_step"],
        "best_metric": summary["best_metric"], "validations": summary["validations"],
        "training_set_dvc_md5": summary["input_dvc_md5"], "sample_grids": summary["grids"],
    }.items() if value is not None})
    return model


@step(enable_cache=True, settings=training_settings("pretrain"), experiment_tracker=EXPERIMENT_TRACKER)
def pretrain(dataset: DatasetRef, config: dict, external_md5s: dict, progress: bool = True,
             resume: bool = False) -> Annotated[TrainedModel, "pretrained_model"]:
    """``external_md5s``: the md5s of the files the recipe's data came from (sources, annotation
    exports; ``photogenic.lineage.tags.input_md5s``), taken when the pipeline starts: lineage tags."""
    return _train("pretrain", config_from_dict(config), dataset, external_md5s, progress, resume)


@step(enable_cache=True, settings=training_settings("quality_tune"), experiment_tracker=EXPERIMENT_TRACKER)
def quality_tune(dataset: DatasetRef, pretrained_model: TrainedModel, config: dict, external_md5s: dict,
                 progress: bool = True, resume: bool = False) -> Annotated[TrainedModel, "quality_tuned_model"]:
    cfg = config_from_dict(config)
    ensure_model(pretrained_model)
    # train from the model the pretrain step made, whatever init_from says
    cfg.training.quality_tune.init_from = pretrained_model.path
    return _train("quality_tune", cfg, dataset, external_md5s, progress, resume)
