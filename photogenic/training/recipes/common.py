"""What the two training recipes share: finding their data and starting model, tracking the run,
saving and registering the model. The recipes (``recipes/pretrain.py``, ``recipes/quality_tune.py``)
read top to bottom as the recipe; this module is their plumbing.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from typing import Any

from photogenic.dataset.atomic import write_text
from photogenic.dataset.store import Dataset
from photogenic.errors import DataError
from photogenic.paths import dataset_dir, model_dir
from photogenic.versioning.log import read_versions

log = logging.getLogger(__name__)


@dataclass
class RunContext:
    """Who is running the stage: set by the ZenML step (run id, input md5), empty in plain runs."""

    resume: bool = False
    zenml_run_id: str | None = None
    input_dvc_md5: str | None = None
    #: more tags for the registered model version (the pipeline's lineage: photogenic.lineage.tags)
    lineage_tags: dict[str, str] | None = None


def open_dataset(data_root: str, name: str, key: str) -> Dataset:
    dataset = Dataset(dataset_dir(data_root, name), name=name)
    if not dataset.exists():
        raise DataError(
            f"{key} is {name!r}, but there is no dataset at {dataset.path}. Run the stage that writes it first, "
            f"or set {key} to an existing dataset (any dataset with a caption column will do)."
        )
    return dataset


def dvc_md5_of(dataset: Dataset, data_root: str) -> str | None:
    """The DVC md5 recorded for this exact content of the dataset, if it was versioned."""
    content = dataset.ref().content_hash
    for version in reversed(read_versions(data_root)):
        if version.get("dataset") == dataset.name and version.get("content_hash") == content:
            return version.get("dvc_md5")
    return None


def resolve_model_path(data_root: str, value: str) -> str:
    """A model name (folder under <data.root>/models) or a path / hub id as given."""
    local = model_dir(data_root, value)
    return local if os.path.isdir(local) else value


def write_summary(output_dir: str, summary: dict[str, Any]) -> str:
    """The run's summary beside the model folder (``<model>.json``): steps, metrics, grids, MLflow ids."""
    path = f"{output_dir}.json"
    write_text(path, json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n")
    return path


def train_tracked(stage: str, config, recipe, pipe, dataset: Dataset, train_rows: list[dict],
                  validation_rows: list[dict], context: RunContext, progress: bool) -> dict[str, Any]:
    """Train ``pipe`` with ``recipe`` inside an MLflow run (ZenML's when there is one): the
    resolved recipe as params, metrics and sample grids as it goes, the model logged and
    registered with its lineage tags; returns the run's summary, also written beside the model."""
    from photogenic.training.tracking import tracking_run
    from photogenic.training.trainer import Trainer

    training = config.training
    root = config.data.root
    output = model_dir(root, recipe.output)
    input_md5 = context.input_dvc_md5 or dvc_md5_of(dataset, root)
    tags = {"stage": stage, "training_set": dataset.name, "training_set_dvc_md5": input_md5,
            "zenml_run_id": context.zenml_run_id, **(context.lineage_tags or {})}
    with tracking_run(training.tracking, run_name=f"{stage}-{recipe.output}") as tracker:
        tracker.log_params({"stage": stage, "recipe": recipe.model_dump(mode="json"),
                            "model": training.model.model_dump(mode="json"), "input_rows": len(train_rows),
                            "validation_rows": len(validation_rows)})
        tracker.set_tags(tags)
        trainer = Trainer(recipe, pipe, dataset.path, train_rows, validation_rows, output,
                          resolution=training.model.resolution, tracker=tracker, progress=progress)
        result = trainer.train(resume=context.resume)
        registered = training.tracking.registered_model if training.tracking.register_model else None
        version = tracker.log_model(output, registered, tags)
    log.info("%s: %d steps in %.0f s (%.1f samples/s), model at %s, MLflow run %s, %s version %s", stage,
             result.steps, result.seconds, result.samples_per_second, output, tracker.run_id, registered, version)
    summary = {"stage": stage, **result.as_dict(), "mlflow_run_id": tracker.run_id, "registered_model": registered,
               "model_version": version, "input": dataset.name, "input_rows": len(train_rows),
               "validation_rows": len(validation_rows), "input_dvc_md5": input_md5}
    from photogenic.training.distributed import is_main_process

    # under DDP the main process's summary is the run's; the others would write the same file
    summary["summary_path"] = write_summary(output, summary) if is_main_process() else None
    return summary
