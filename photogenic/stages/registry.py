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
    ref: DatasetRef
    stats: dict[str, Any] = field(default_factory=dict)
    #: HTML reports the stage wrote (name -> path), for people and for the orchestrator's UI
    reports: dict[str, str] = field(default_factory=dict)


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
        **_model_score_bounds(settings),
    }


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
    ]
}


def get_stage(name: str) -> StageSpec:
    try:
        return STAGES[name]
    except KeyError:
        raise ConfigError(f"Unknown stage {name!r}; the stages are: {', '.join(STAGES)}.") from None
