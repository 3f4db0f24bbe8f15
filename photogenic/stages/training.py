"""Running a training stage for a pipeline runner (the ZenML steps, the KFP tasks): the model
registered with the lineage of the dataset it trained on, and handed on as a TrainedModel."""

from __future__ import annotations

from photogenic.config import RunConfig
from photogenic.dataset.ref import DatasetRef
from photogenic.lineage.tags import lineage_datasets, model_version_tags
from photogenic.stages.registry import StageOutput, get_stage
from photogenic.stages.runner import run_stage
from photogenic.training.artifact import TrainedModel, trained_model


def train_with_lineage(stage: str, config: RunConfig, dataset: DatasetRef, run: dict[str, str],
                       inputs: dict[str, str], progress: bool = True,
                       resume: bool = False) -> tuple[TrainedModel, StageOutput]:
    """Run training stage ``stage`` on ``dataset`` (versioned by the runner). ``run``: the runner,
    id and name of the pipeline run; ``inputs``: the external inputs' md5s the lineage records."""
    lineage = {}
    if dataset.dvc_md5:  # an unversioned dataset (dvc.enabled=false) has no lineage to record
        lineage = model_version_tags(config, lineage_datasets(dataset), run, inputs=inputs)
    output = run_stage(stage, config, progress=progress, resume=resume,
                       zenml_run_id=run.get("id") if run.get("runner") == "zenml" else None,
                       input_dvc_md5=dataset.dvc_md5, lineage_tags=lineage)
    spec = get_stage(stage)
    name = spec.dataset_names(config, spec.model_outputs)[0]
    return trained_model(name, output.model, output.stats), output
