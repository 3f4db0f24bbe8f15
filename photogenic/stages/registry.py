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
    #: files the stage reads from outside the datasets (sources, annotation exports): a function of
    #: the config returning name -> path, URL or glob (relative paths under data.root). Their md5s
    #: (photogenic.versioning.fingerprint) go into the ZenML cache key, the model lineage tags and
    #: `photogenic retrain`'s "did anything change" check.
    external_inputs: Callable[[RunConfig], dict[str, str]] | None = None
    #: resources that depend on the config (e.g. a GPU only when a model backend is configured);
    #: ``resources`` is what the stage needs with the embedded default
    config_resources: Callable[[RunConfig], Resources] | None = None

    #: dvc.yaml outputs the stage writes besides its datasets (dvc.yaml path templates), e.g. the
    #: curation folder of tasks and exports
    extra_outs: tuple[str, ...] = ()
    #: False: the stage has no dvc.yaml stage, on purpose (evaluate and promote: registry URIs and aliases); the drift check
    #: then requires its absence instead of its presence
    dvc_stage: bool = True

    def resources_for(self, config: RunConfig) -> Resources:
        """What the stage needs to run with ``config``."""
        return self.config_resources(config) if self.config_resources else self.resources
    #: config keys naming the models the stage reads (model names under <data.root>/models, diffusers
    #: folders or models:/ URIs) / writes (model names). A stage whose models the config leaves unset
    #: is left out of the KFP pipeline (photogenic.kfp.pipeline.stage_graph)
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


def _ingest_sources(config: RunConfig) -> dict[str, str]:
    return {f"source{i}": source.uri for i, source in enumerate(config.ingest.sources)}


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
        **_model_score_bounds(settings),
    }


def _run_curation(config: RunConfig, progress: bool) -> StageOutput:
    from photogenic.stages.curation import curate

    result = curate(config, progress=progress)
    return StageOutput(ref=result.ref, stats=result.stats())


def _curation_gate_params(config: RunConfig) -> dict[str, Any]:
    settings = config.curation
    return {
        "stage1_quota": settings.stage1.quota,
        "stage2_quota": settings.stage2.quota,
        "min_agreement": settings.gate.min_agreement if settings.gate.on_low_agreement == "fail" else None,
    }


def _curation_exports(config: RunConfig) -> dict[str, str]:
    """The annotators' exports under <data.root>/<curation.dir>/stage<N>/annotations/. SIMULATED
    exports are left out: the stage writes them itself from the sample pool's ground truth, which
    is declared instead, for the stages that have no people's exports (the ones it simulates)."""
    from photogenic.curation.importer import annotation_files
    from photogenic.curation.simulate import is_simulated

    inputs: dict[str, str] = {}
    for stage in (1, 2):
        people = [path for path in annotation_files(config, stage) if not is_simulated(path)]
        for path in people:
            name = path.rsplit("/", 1)[-1]
            inputs[f"stage{stage}/{name}"] = f"{config.curation.dir}/stage{stage}/annotations/{name}"
        if not people and config.curation.simulate.enabled:
            inputs["simulate.ground_truth"] = config.curation.simulate.ground_truth
    return inputs


def _run_caption(config: RunConfig, progress: bool) -> StageOutput:
    from photogenic.stages.caption import caption

    result = caption(config, progress=progress)
    return StageOutput(ref=result.ref, stats={"caption_sources": result.sources, "quarantined": result.quarantined})


def _caption_gate_params(config: RunConfig) -> dict[str, Any]:
    return {
        **_curation_gate_params(config),
        "min_chars": config.caption.min_chars,
        "max_chars": config.caption.max_chars,
        "max_alt_text_share": config.caption.gate.max_alt_text_share,
    }


def _run_upsample(config: RunConfig, progress: bool) -> StageOutput:
    from photogenic.stages.upsample import upsample

    result = upsample(config, progress=progress)
    return StageOutput(ref=result.ref, stats=result.stats)


def _upsample_gate_params(config: RunConfig) -> dict[str, Any]:
    return {"min_short_side": config.upsample.min_short_side}


def _run_package(config: RunConfig, progress: bool) -> StageOutput:
    from photogenic.stages.package import package

    result = package(config, progress=progress)
    return StageOutput(ref=result.ref, stats=result.stats, reports={"dataset_card": result.card})


def _package_gate_params(config: RunConfig) -> dict[str, Any]:
    from photogenic.packaging.buckets import make_buckets

    settings = config.package
    buckets = make_buckets(settings.resolution, settings.bucket_step, settings.max_aspect_ratio)
    return {"resolution": settings.resolution, "buckets": [b.name for b in buckets], "min_rows": settings.gate.min_rows}


def upsample_resources(config: RunConfig) -> Resources:
    """A GPU when a diffusion checkpoint is configured; Lanczos runs on CPUs."""
    settings = config.upsample
    if settings.backend == "diffusion":
        return Resources(cpus=4, memory_gb=16, gpus=settings.diffusion.gpus)
    return Resources(cpus=2, memory_gb=4)


def _run_evaluate(config: RunConfig, progress: bool) -> StageOutput:
    from photogenic.evaluation.evaluate import run_evaluation

    result = run_evaluation(config, progress=progress)
    return StageOutput(ref=result.ref, stats={"headline": result.results["headline"], "fid": result.results["fid"],
                                              "mlflow_run_id": result.results.get("mlflow_run_id")},
                       reports={"evaluation_report": result.report})


def _run_promote(config: RunConfig, progress: bool) -> StageOutput:
    from photogenic.dataset.store import Dataset
    from photogenic.evaluation.evaluate import read_results
    from photogenic.evaluation.promotion import promote
    from photogenic.paths import dataset_dir

    folder = dataset_dir(config.data.root, config.evaluate.output)
    ref = Dataset(folder, config.evaluate.output).ref()
    if not config.evaluate.promotion.enabled:
        return StageOutput(ref=ref, stats={"promotion": {"promoted": False, "reason": "evaluate.promotion.enabled "
                                                         "is false"}})
    decision = promote(read_results(folder), config.evaluate.promotion)
    return StageOutput(ref=ref, stats={"promotion": decision.as_dict()})
def _model_score_bounds(settings) -> dict[str, Any]:
    """Gate bounds for the model-backed scorers that run; top-k fixes the most candidates."""
    bounds: dict[str, tuple[float | None, float | None]] = {}
    if settings.ocr.enabled:
        bounds["score_ocr_text_area"] = (None, settings.ocr.max_text_area)
    if settings.nsfw.enabled:
        bounds["score_nsfw"] = (None, settings.nsfw.max_score)
    if settings.clip.model and settings.clip.min_score is not None:
        bounds["score_clip"] = (settings.clip.min_score, None)
    if settings.clip.model and settings.aesthetic.head and settings.aesthetic.min_score is not None:
        bounds["score_aesthetic"] = (settings.aesthetic.min_score, None)
    extra: dict[str, Any] = {"score_bounds": bounds, "nullable_scores": ["score_clip"]}  # uncaptioned rows
    if settings.top_k.k is not None:
        extra["max_rows"] = settings.top_k.k
    return extra


def _training_runner(recipe: str) -> Callable[..., StageOutput]:
    def run(config: RunConfig, progress: bool, resume: bool = False, zenml_run_id: str | None = None,
            input_dvc_md5: str | None = None, lineage_tags: dict[str, str] | None = None) -> StageOutput:
        import importlib

        from photogenic.training.stage import RunContext

        module = importlib.import_module(f"photogenic.training.recipes.{recipe}")
        summary = module.run(config, RunContext(resume=resume, zenml_run_id=zenml_run_id,
                                                input_dvc_md5=input_dvc_md5, lineage_tags=lineage_tags),
                             progress=progress)
        reports = {"samples": summary["grids"][-1]} if summary["grids"] else {}
        return StageOutput(ref=None, stats=summary, reports=reports, model=summary["model_dir"])

    return run


#: the training subsections both recipes read (model, tracking, resources)
_TRAINING_SHARED = ("training.model", "training.tracking", "training.resources")


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
            external_inputs=_ingest_sources,
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
            name="curation",
            description="Two human curation stages over the candidate pool: export Label Studio tasks, import "
            "the annotators' exports (SIMULATED annotators for the sample pool), vote, apply the quotas, and "
            "write the curated set with every label and the human captions.",
            run=_run_curation,
            params=("data", "curation"),
            gate="curation",
            external_inputs=_curation_exports,
            extra_outs=("${data.root}/${curation.dir}",),
            gate_params=_curation_gate_params,
            resources=Resources(cpus=1, memory_gb=2),
            inputs=("curation.input",),
            outputs=("curation.output",),
        ),
        StageSpec(
            name="caption",
            description="Choose each curated image's training caption: human, else a captioning model, else "
            "the alt-text; cleaned and bounded, its source recorded.",
            run=_run_caption,
            # curation: the caption gate re-checks the curation quotas (_caption_gate_params)
            params=("data", "caption", "curation"),
            gate="caption",
            gate_params=_caption_gate_params,
            resources=Resources(cpus=2, memory_gb=4),
            inputs=("caption.input",),
            outputs=("caption.output",),
        ),
        StageSpec(
            name="upsample",
            description="Upsample every row whose short side is below the training resolution (Lanczos, or a "
            "diffusers upscaler conditioned on the training caption); new images in new shards, originals kept.",
            run=_run_upsample,
            params=("data", "upsample"),
            gate="upsample",
            gate_params=_upsample_gate_params,
            # the embedded default (Lanczos); with upsample.backend=diffusion it asks for a GPU
            resources=Resources(cpus=2, memory_gb=4),
            config_resources=upsample_resources,
            inputs=("upsample.input",),
            outputs=("upsample.output",),
        ),
        StageSpec(
            name="package",
            description="Package the training set: aspect-ratio buckets at the training resolution, crop "
            "coordinates, captions, a stable validation split, WebDataset shards and a dataset card.",
            run=_run_package,
            # upsample: package refuses a resolution above upsample.min_short_side
            params=("data", "package", "upsample"),
            gate="training_set",
            gate_params=_package_gate_params,
            resources=Resources(cpus=2, memory_gb=4),
            inputs=("package.input",),
            outputs=("package.output",),
        ),
        StageSpec(
            name="pretrain",
            description="Pretrain a text-to-image diffusion model (new from config, or a published pipeline) on "
            "the pool; checkpoints, EMA, MLflow tracking; the model is saved as a diffusers pipeline and registered.",
            run=_training_runner("pretrain"),
            # its own recipe and the shared model/tracking settings, not quality-tuning's
            params=("data", *_TRAINING_SHARED, "training.pretrain"),
            gate=None,
            resources=_training_resources(),
            config_resources=_training_resources,
            inputs=("training.pretrain.input",),
            model_outputs=("training.pretrain.output",),
            resumable=True,
        ),
        StageSpec(
            name="quality_tune",
            description="Quality-tune the pretrained model on the curated training set (Emu's recipe: small "
            "constant LR, noise offset 0.1, early stopping on a validation metric, best model kept).",
            run=_training_runner("quality_tune"),
            params=("data", *_TRAINING_SHARED, "training.quality_tune"),
            gate=None,
            resources=_training_resources(),
            config_resources=_training_resources,
            inputs=("training.quality_tune.input",),
            model_inputs=("training.quality_tune.init_from",),
            model_outputs=("training.quality_tune.output",),
            resumable=True,
        ),
        StageSpec(
            name="evaluate",
            description="Sample the candidate and the baseline model on the prompt set with the same seeds, "
            "judge every image, and write pairwise win rates with intervals, FID/KID and the report.",
            run=_run_evaluate,
            # ingest: the evaluation dataset's shards are sized as ingest's (shard_max_images/bytes)
            params=("data", "evaluate", "ingest"),
            gate=None,
            resources=Resources(cpus=2, memory_gb=8),
            # a cluster runner requests evaluate.gpus GPUs
            config_resources=lambda config: Resources(cpus=2, memory_gb=8, gpus=config.evaluate.gpus),
            outputs=("evaluate.output",),
            external_inputs=lambda config: {"prompts": config.evaluate.prompts},
            model_inputs=("evaluate.candidate", "evaluate.baseline"),
            # the models may be registry URIs (models:/name@alias), which dvc.yaml cannot track
            dvc_stage=False,
        ),
        StageSpec(
            name="promote",
            description="Give the candidate the registry alias (champion) only if the evaluation shows it beats "
            "the current champion or the baseline by the configured margin; record the decision on the version.",
            run=_run_promote,
            params=("data", "evaluate"),
            gate=None,
            resources=Resources(cpus=1, memory_gb=1),
            inputs=("evaluate.output",),
            # it acts on the model registry after evaluate, which has no dvc.yaml stage
            dvc_stage=False,
        ),
    ]
}


def get_stage(name: str) -> StageSpec:
    try:
        return STAGES[name]
    except KeyError:
        raise ConfigError(f"Unknown stage {name!r}; the stages are: {', '.join(STAGES)}.") from None
