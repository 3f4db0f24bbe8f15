"""The two training stages, pretrain and quality_tune: their declarations, and running one for a
pipeline runner (the ZenML steps, the KFP tasks) with the model registered under the lineage of
the dataset it trained on and handed on as a TrainedModel. The recipes themselves live in
photogenic/training/recipes/.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from photogenic.config import RunConfig, TrainingResources
from photogenic.dataset.ref import DatasetRef
from photogenic.lineage.tags import lineage_datasets, model_version_tags
from photogenic.stages.spec import Resources, StageOutput, StageSpec
from photogenic.training.artifact import TrainedModel, trained_model
from photogenic.training.recipes.common import RunContext

#: the training subsections both recipes read (model, tracking, resources)
_SHARED = ("training.model", "training.tracking", "training.resources")


def _runner(recipe: str) -> Callable[..., StageOutput]:
    def run(config: RunConfig, progress: bool, inputs: dict[str, DatasetRef] | None = None, resume: bool = False,
            zenml_run_id: str | None = None, input_dvc_md5: str | None = None,
            lineage_tags: dict[str, str] | None = None) -> StageOutput:
        # imported when run: the recipes import torch and diffusers, which readers of the
        # declarations (the CLI, the registry's checks, pipeline composition) need not load
        module = importlib.import_module(f"photogenic.training.recipes.{recipe}")
        summary = module.run(config, RunContext(resume=resume, zenml_run_id=zenml_run_id,
                                                input_dvc_md5=input_dvc_md5, lineage_tags=lineage_tags),
                             progress=progress)
        reports = {"samples": summary["grids"][-1]} if summary["grids"] else {}
        return StageOutput(ref=None, stats=summary, reports=reports, model=summary["model_dir"])

    return run


def resources(config: RunConfig | None = None) -> Resources:
    """From training.resources (the defaults when no config is at hand, as at import time)."""
    res = config.training.resources if config is not None else TrainingResources()
    return Resources(cpus=res.cpus, memory_gb=res.memory_gb, gpus=res.gpus)


PRETRAIN = StageSpec(
    name="pretrain",
    description="Pretrain a text-to-image diffusion model (new from config, or a published pipeline) on "
    "the pool; checkpoints, EMA, MLflow tracking; the model is saved as a diffusers pipeline and registered.",
    run=_runner("pretrain"),
    # its own recipe and the shared model/tracking settings, not quality-tuning's
    params=("data", *_SHARED, "training.pretrain"),
    gate=None,
    resources=resources(),
    config_resources=resources,
    inputs=("training.pretrain.input",),
    model_outputs=("training.pretrain.output",),
    resumable=True,
)

QUALITY_TUNE = StageSpec(
    name="quality_tune",
    description="Quality-tune the pretrained model on the curated training set (Emu's recipe: small "
    "constant LR, noise offset 0.1, early stopping on a validation metric, best model kept).",
    run=_runner("quality_tune"),
    params=("data", *_SHARED, "training.quality_tune"),
    gate=None,
    resources=resources(),
    config_resources=resources,
    inputs=("training.quality_tune.input",),
    model_inputs=("training.quality_tune.init_from",),
    model_outputs=("training.quality_tune.output",),
    resumable=True,
)

SPECS = {spec.name: spec for spec in (PRETRAIN, QUALITY_TUNE)}


def train_with_lineage(stage: str, config: RunConfig, dataset: DatasetRef, run: dict[str, str],
                       inputs: dict[str, str], progress: bool = True,
                       resume: bool = False) -> tuple[TrainedModel, StageOutput]:
    """Run training stage ``stage`` on ``dataset`` (versioned by the runner). ``run``: the runner,
    id and name of the pipeline run; ``inputs``: the external inputs' md5s the lineage records."""
    lineage = {}
    if dataset.dvc_md5:  # an unversioned dataset (dvc.enabled=false) has no lineage to record
        lineage = model_version_tags(config, lineage_datasets(dataset), run, inputs=inputs)
    spec = SPECS[stage]
    output = spec.run(config, progress, resume=resume,
                      zenml_run_id=run.get("id") if run.get("runner") == "zenml" else None,
                      input_dvc_md5=dataset.dvc_md5, lineage_tags=lineage)
    name = spec.dataset_names(config, spec.model_outputs)[0]
    return trained_model(name, output.model, output.stats), output
