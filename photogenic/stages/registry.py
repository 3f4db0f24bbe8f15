"""Every stage's contract, declared once: what it reads, writes, which config sections it takes,
which quality gate checks its output, and what resources it needs.

The runners (ZenML steps, ``photogenic step`` for dvc.yaml, later KFP) are thin over this.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from photogenic.config import RunConfig
from photogenic.dataset.ref import DatasetRef
from photogenic.errors import ConfigError


@dataclass(frozen=True)
class Resources:
    cpus: float = 1.0
    memory_gb: float = 2.0
    gpus: int = 0


@dataclass
class StageOutput:
    #: the dataset the stage wrote (None for stages whose product is a model)
    ref: DatasetRef | None
    stats: dict[str, Any] = field(default_factory=dict)
    #: HTML reports the stage wrote (name -> path), for people and for the orchestrator's UI
    reports: dict[str, str] = field(default_factory=dict)
    #: the model folder a training stage wrote (a diffusers pipeline)
    model: str | None = None


@dataclass(frozen=True)
class StageSpec:
    name: str
    description: str
    run: Callable[[RunConfig, bool], StageOutput]
    #: config sections the stage reads (DVC params, the step's parameters)
    params: tuple[str, ...]
    #: the Great Expectations suite kind that gates the stage's output
    gate: str | None
    #: parameters of that suite, taken from the config
    gate_params: Callable[[RunConfig], dict[str, Any]] | None = None
    resources: Resources = Resources()
    #: config keys (dotted) whose values name the datasets the stage reads, e.g. "filter.input"
    inputs: tuple[str, ...] = ()
    #: config keys (dotted) whose values name the datasets the stage writes, e.g. "filter.output"
    outputs: tuple[str, ...] = ()
    #: config keys whose values name models (folders under <data.root>/models) the stage reads / writes
    model_inputs: tuple[str, ...] = ()
    model_outputs: tuple[str, ...] = ()
    #: the stage can continue a killed run from its last checkpoint (``photogenic step NAME --resume``)
    resumable: bool = False

    def dataset_names(self, config: RunConfig, keys: tuple[str, ...]) -> list[str]:
        """The dataset names that ``keys`` (``self.inputs`` or ``self.outputs``) hold in ``config``."""
        names = []
        for key in keys:
            node: Any = config
            for part in key.split("."):
                node = getattr(node, part)
            names.append(node)
        return names


def _run_ingest(config: RunConfig, progress: bool) -> StageOutput:
    from photogenic.stages.ingest import ingest

    result = ingest(config, progress=progress)
    return StageOutput(ref=result.ref, stats=result.stats.as_dict())


def _ingest_gate_params(config: RunConfig) -> dict[str, Any]:
    return {
        "max_caption_chars": config.ingest.max_caption_chars,
        "max_quarantine_share": config.ingest.gate.max_quarantine_share,
        "min_rows": config.ingest.gate.min_rows,
    }


def _run_auto_filter(config: RunConfig, progress: bool) -> StageOutput:
    from photogenic.stages.auto_filter import auto_filter

    result = auto_filter(config, progress=progress)
    return StageOutput(ref=result.ref, stats={"funnel": dict(result.funnel), "rejections": result.reasons},
                       reports={"funnel_report": result.report})


def _auto_filter_gate_params(config: RunConfig) -> dict[str, Any]:
    settings = config.filter
    return {
        "min_short_side": settings.size.min_short_side if settings.size.enabled else None,
        "max_aspect_ratio": settings.size.max_aspect_ratio if settings.size.enabled else None,
        "metadata_bounds": {name: (b.min, b.max) for name, b in settings.metadata.thresholds.items()},
        "dedup": settings.dedup.enabled,
    }


def _training_runner(recipe: str) -> Callable[..., StageOutput]:
    def run(config: RunConfig, progress: bool, resume: bool = False, zenml_run_id: str | None = None,
            input_dvc_md5: str | None = None) -> StageOutput:
        import importlib

        from photogenic.training.stage import RunContext

        module = importlib.import_module(f"photogenic.training.recipes.{recipe}")
        summary = module.run(config, RunContext(resume=resume, zenml_run_id=zenml_run_id,
                                                input_dvc_md5=input_dvc_md5), progress=progress)
        reports = {"samples": summary["grids"][-1]} if summary["grids"] else {}
        return StageOutput(ref=None, stats=summary, reports=reports, model=summary["model_dir"])

    return run


def _training_resources(config: RunConfig | None = None) -> Resources:
    """From training.resources (the defaults when no config is at hand, as at import time)."""
    from photogenic.config import TrainingResources

    res = config.training.resources if config is not None else TrainingResources()
    return Resources(cpus=res.cpus, memory_gb=res.memory_gb, gpus=res.gpus)


STAGES: dict[str, StageSpec] = {
    spec.name: spec
    for spec in [
        StageSpec(
            name="ingest",
            description="Read the sources, decode and check every image, collapse exact duplicates, "
            "quarantine what cannot be used, and write the ingested dataset.",
            run=_run_ingest,
            params=("data", "ingest"),
            gate="ingest",
            gate_params=_ingest_gate_params,
            resources=Resources(cpus=2, memory_gb=4),
            outputs=("ingest.output",),
        ),
        StageSpec(
            name="auto_filter",
            description="Score the ingested dataset with the scorer cascade, cheap scorers first, and "
            "write the candidate pool for human curation, with every score and rejection reason.",
            run=_run_auto_filter,
            params=("data", "filter"),
            gate="auto_filter",
            gate_params=_auto_filter_gate_params,
            resources=Resources(cpus=2, memory_gb=4),
            inputs=("filter.input",),
            outputs=("filter.output",),
        ),
        StageSpec(
            name="pretrain",
            description="Pretrain a text-to-image diffusion model (new from config, or a published pipeline) on "
            "the pool; checkpoints, EMA, MLflow tracking; the model is saved as a diffusers pipeline and registered.",
            run=_training_runner("pretrain"),
            params=("data", "training"),
            gate=None,
            resources=_training_resources(),
            inputs=("training.pretrain.input",),
            model_outputs=("training.pretrain.output",),
            resumable=True,
        ),
        StageSpec(
            name="quality_tune",
            description="Quality-tune the pretrained model on the curated training set (Emu's recipe: small "
            "constant LR, noise offset 0.1, early stopping on a validation metric, best model kept).",
            run=_training_runner("quality_tune"),
            params=("data", "training"),
            gate=None,
            resources=_training_resources(),
            inputs=("training.quality_tune.input",),
            model_inputs=("training.quality_tune.init_from",),
            model_outputs=("training.quality_tune.output",),
            resumable=True,
        ),
    ]
}


def get_stage(name: str) -> StageSpec:
    try:
        return STAGES[name]
    except KeyError:
        raise ConfigError(f"Unknown stage {name!r}; the stages are: {', '.join(STAGES)}.") from None
