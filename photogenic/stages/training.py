"""The two training stages, pretrain and quality_tune: their declarations, and running one for a
pipeline runner (the ZenML steps, the KFP tasks) with the model registered under the lineage of
the dataset it trained on and handed on as a TrainedModel. The recipes themselves live in
photogenic/training/recipes/.
"""

from __future__ import annotations

import importlib
import json
import logging
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from photogenic.config import RunConfig, TrainingResources, dump_config
from photogenic.dataset.ref import DatasetRef
from photogenic.errors import DataError
from photogenic.lineage.tags import lineage_datasets, model_version_tags
from photogenic.paths import model_dir
from photogenic.stages.spec import Resources, StageOutput, StageSpec
from photogenic.training.artifact import TrainedModel, trained_model
from photogenic.training.recipes.common import RunContext

log = logging.getLogger(__name__)

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
    return Resources(cpus=res.cpus, memory_gb=res.memory_gb, gpus=res.gpus, nodes=res.nodes)


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
    # a retried pod starts from nothing (no checkpoint survives it): one retry, and days to run
    retries=1,
    timeout_hours=96.0,
    tracked=True,
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
    retries=1,
    timeout_hours=24.0,
    tracked=True,
)

SPECS = {spec.name: spec for spec in (PRETRAIN, QUALITY_TUNE)}


def training_context(stage: str, config: RunConfig, dataset: DatasetRef, run: dict[str, str],
                     inputs: dict[str, str], resume: bool = False) -> dict:
    """What a recipe is told besides its config: the lineage of ``dataset`` (versioned by the
    runner) and of the pipeline run (``run``: its runner, id and name; ``inputs``: the external
    inputs' md5s), as ``photogenic step --lineage-file`` reads it."""
    lineage = {}
    if dataset.dvc_md5:  # an unversioned dataset (dvc.enabled=false) has no lineage to record
        lineage = model_version_tags(config, lineage_datasets(dataset), run, inputs=inputs)
    return {"resume": resume, "zenml_run_id": run.get("id") if run.get("runner") == "zenml" else None,
            "input_dvc_md5": dataset.dvc_md5, "lineage_tags": lineage}


def train_with_lineage(stage: str, config: RunConfig, dataset: DatasetRef, run: dict[str, str],
                       inputs: dict[str, str], progress: bool = True, resume: bool = False,
                       processes: int = 1) -> tuple[TrainedModel, StageOutput]:
    """Run training stage ``stage`` on ``dataset`` with its lineage (``training_context``);
    ``processes``: how many processes train the one model (one per GPU a pod was given),
    launched with torchrun on this machine."""
    spec = SPECS[stage]
    context = training_context(stage, config, dataset, run, inputs, resume)
    if processes > 1:
        output = _launch(stage, config, context, processes)
    else:
        output = spec.run(config, progress, **context)
    name = spec.dataset_names(config, spec.model_outputs)[0]
    return trained_model(name, output.model, output.stats), output


def train_node(stage: str, config: RunConfig, context: dict) -> StageOutput | None:
    """One node of a multi-node training job (a Kubeflow Trainer pod): torchrun joins the job's
    other nodes at the rendezvous the operator set in this pod's environment (``PET_NNODES``,
    ``PET_NODE_RANK``, ``PET_MASTER_ADDR``, ...) and starts ``PET_NPROC_PER_NODE`` processes.
    The node that holds the job's main process returns its output; the others None."""
    return _launch(stage, config, context, None)


def launch_command(stage: str, config_file: str, lineage_file: str, processes: int | None) -> list[str]:
    """``photogenic step <stage>`` under torchrun: ``processes`` on this machine alone
    (``--standalone``), or, with None, as one node of a job whose rendezvous torchrun reads from
    the ``PET_*`` variables."""
    rendezvous = ["--standalone", f"--nproc_per_node={processes}"] if processes else []
    return [sys.executable, "-m", "torch.distributed.run", *rendezvous, "-m", "photogenic.cli", "step", stage,
            "--quiet", "--config", config_file, "--lineage-file", lineage_file]


def _launch(stage: str, config: RunConfig, context: dict, processes: int | None) -> StageOutput | None:
    """``launch_command``, handed the config and the run's lineage in files; the main process's
    summary is the run's (None on a node that does not hold the main process)."""
    spec = SPECS[stage]
    output = model_dir(config.data.root, spec.dataset_names(config, spec.model_outputs)[0])
    summary_file = Path(f"{output}.json")
    summary_file.unlink(missing_ok=True)  # this launch's summary, not an earlier one's
    with tempfile.TemporaryDirectory(prefix="photogenic-launch-") as folder:
        config_file, lineage_file = Path(folder) / "config.yaml", Path(folder) / "lineage.json"
        config_file.write_text(dump_config(config), encoding="utf-8")
        lineage_file.write_text(json.dumps(context), encoding="utf-8")
        command = launch_command(stage, str(config_file), str(lineage_file), processes)
        where = f"{processes} processes" if processes else "this node's share of a multi-node job"
        log.info("%s: training in %s: %s", stage, where, " ".join(command))
        done = subprocess.run(command)
        if done.returncode != 0:
            raise DataError(f"Training {stage} in {where} (torchrun) failed with exit code "
                            f"{done.returncode}; its processes' messages are above.")
    if processes is None and not summary_file.exists():
        return None
    summary = json.loads(summary_file.read_text(encoding="utf-8"))
    return StageOutput(ref=None, stats=summary, model=summary["model_dir"])
