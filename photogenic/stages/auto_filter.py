"""Auto-filter: run the scorer cascade over the ingested dataset and write the candidate pool.

The candidate dataset's manifest holds the surviving rows with every score they received; its
images stay in the input dataset's shards (the manifest points there), because filtering makes
no new pixels. The rejected rows, with their scores, the scorer that rejected them and why, are
written beside it in ``rejected.parquet``, so a rejection can always be audited and undone.
"""

from __future__ import annotations

import logging
import posixpath
import sys
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from photogenic.config import RunConfig
from photogenic.dataset.ref import DatasetRef
from photogenic.dataset.schema import QUARANTINE_SCHEMA
from photogenic.dataset.store import Dataset, parquet_bytes
from photogenic.filtering.cascade import REASON, REJECTED_BY, CascadeResult, order, run_cascade
from photogenic.filtering.report import write_funnel_report
from photogenic.filtering.scorer import Scorer
from photogenic.filtering.scorers.clip import AestheticScorer, ClipScoreScorer, load_aesthetic_head
from photogenic.filtering.scorers.concept import ConceptBalanceScorer
from photogenic.filtering.scorers.dedup import DuplicateScorer
from photogenic.filtering.scorers.metadata import MetadataScorer
from photogenic.filtering.scorers.nsfw import NsfwScorer
from photogenic.filtering.scorers.ocr import TextAreaScorer
from photogenic.filtering.scorers.size import SizeScorer
from photogenic.filtering.scorers.technical import TechnicalScorer
from photogenic.filtering.scorers.topk import TopKScorer
from photogenic.scoring.clip import check_checkpoint, hub_offline, resolve_checkpoint
from photogenic.paths import dataset_dir, is_url
from photogenic.stages.inputs import open_input

log = logging.getLogger(__name__)

REJECTED = "rejected.parquet"


@dataclass
class FilterResult:
    ref: DatasetRef
    funnel: list[tuple[str, int]]
    reasons: dict[str, int]
    #: the funnel report (HTML), beside the dataset folder
    report: str


def build_scorers(config: RunConfig) -> list[Scorer]:
    """The scorers the config enables, in cascade order. A configured model that cannot be
    loaded is a ConfigError here, in the main process, before any worker starts."""
    settings = config.filter
    scorers: list[Scorer] = []
    if settings.size.enabled:
        scorers.append(SizeScorer(settings.size))
    if settings.metadata.thresholds:
        scorers.append(MetadataScorer(settings.metadata))
    if settings.technical.enabled:
        scorers.append(TechnicalScorer(settings.technical))
    if settings.ocr.enabled:
        scorers.append(TextAreaScorer(settings.ocr))
    if settings.nsfw.enabled:
        scorers.append(NsfwScorer(settings.nsfw))
    clip = None
    if settings.clip.model:
        clip = check_checkpoint(settings.clip.model, "filter.clip.model", config.data.root)
        scorers.append(ClipScoreScorer(settings.clip, clip))
    if clip and settings.aesthetic.head:
        head = resolve_checkpoint(settings.aesthetic.head, config.data.root)
        from transformers import CLIPConfig

        dim = CLIPConfig.from_pretrained(clip, local_files_only=hub_offline()).projection_dim
        load_aesthetic_head(head, dim)  # fails here, early, if it cannot load
        scorers.append(AestheticScorer(settings.aesthetic, clip, head, settings.clip.cost_ms))
    if settings.dedup.enabled:
        scorers.append(DuplicateScorer(settings.dedup))
    if settings.concept.enabled:
        scorers.append(ConceptBalanceScorer(settings.concept, clip, settings.clip.cost_ms))
    if settings.top_k.k is not None:
        scorers.append(TopKScorer(settings.top_k))
    return order(scorers)


def scorers_off(config: RunConfig) -> list[dict[str, Any]]:
    """The scorers that did not run and why, for the funnel report and the dataset card."""
    settings, off = config.filter, []
    for name in ("size", "technical", "ocr", "nsfw", "dedup", "concept"):
        if not getattr(settings, name).enabled:
            off.append({"name": name, "enabled": False, "why": f"disabled (filter.{name}.enabled=false)"})
    if not settings.clip.model:
        off.append({"name": "clip", "enabled": False,
                    "why": "no CLIP checkpoint configured (filter.clip.model): image-caption CLIP score not computed"})
    if not (settings.clip.model and settings.aesthetic.head):
        missing = "filter.clip.model and filter.aesthetic.head" if not settings.clip.model else "filter.aesthetic.head"
        off.append({"name": "aesthetic", "enabled": False,
                    "why": f"no aesthetic predictor configured ({missing}): aesthetic score not computed"})
    return off


def auto_filter(config: RunConfig, progress: bool = True) -> FilterResult:
    settings = config.filter
    source = open_input(config.data.root, "filter", settings.input, settings.output, made_by="ingest")
    scorers = build_scorers(config)
    log.info("auto-filter cascade: %s", " → ".join(s.name for s in scorers))
    result = run_cascade(source, scorers, workers=settings.workers, batch_size=settings.batch_size, progress=progress)
    target = Dataset(dataset_dir(config.data.root, settings.output), name=settings.output)
    ref = _write(source, target, result, scorers, config)
    # beside the dataset, not in it: the report is for people, the dataset's md5 is for DVC
    described = [s.describe() for s in scorers] + scorers_off(config)
    report = write_funnel_report(result, source, described, report_path(target))
    _log_to_mlflow(report)
    log.info("auto-filter %s → %s: %s", settings.input, settings.output,
             " → ".join(f"{name} {count}" for name, count in result.funnel))
    log.info("funnel report: %s", report)
    return FilterResult(ref=ref, funnel=result.funnel, reasons=dict(result.reasons), report=report)


def report_path(dataset: Dataset) -> str:
    return f"{dataset.path}.funnel.html"


def _write(source: Dataset, target: Dataset, result: CascadeResult, scorers: list[Scorer],
           config: RunConfig) -> DatasetRef:
    table = _repoint_shards(result.table, source, target)
    survivors = table.filter(pa.compute.is_null(table[REJECTED_BY])).drop_columns([REJECTED_BY, REASON])
    rejected = table.filter(pa.compute.is_valid(table[REJECTED_BY]))
    card: dict[str, Any] = {
        "name": target.name,
        "stage": "auto_filter",
        "input": source.name,
        "rows": survivors.num_rows,
        "rejected": rejected.num_rows,
        "funnel": [{"after": name, "rows": count} for name, count in result.funnel],
        "rejections_by_scorer": dict(sorted(result.reasons.items())),
        "scorers": [s.describe() for s in scorers],
        "scorers_off": scorers_off(config),
        "params": config.filter.model_dump(mode="json"),
    }
    # filtering quarantines nothing: a row it cannot use is a rejection, with its reason
    return target.write(survivors, QUARANTINE_SCHEMA.empty_table(), card, files={REJECTED: parquet_bytes(rejected)})


def _log_to_mlflow(report: str) -> None:
    """Attach the funnel report to the active MLflow run, when there is one. MLflow is only
    looked up, never imported here: a run that has not imported it has no active run."""
    mlflow = sys.modules.get("mlflow")
    if mlflow is not None and mlflow.active_run() is not None and not is_url(report):
        mlflow.log_artifact(report, artifact_path="auto_filter")
        log.info("funnel report logged to MLflow run %s", mlflow.active_run().info.run_id)


def _repoint_shards(table: pa.Table, source: Dataset, target: Dataset) -> pa.Table:
    """Shard paths are relative to the manifest's folder: point them from the new folder at the
    input dataset's shards (or keep them absolute when the data lives at a URL)."""
    def repoint(shard: str) -> str:
        full = source.shard_path(shard)
        return full if is_url(full) or posixpath.isabs(shard) else posixpath.relpath(full, target.path)

    shards = [repoint(s) for s in table["shard"].to_pylist()]
    return table.set_column(table.schema.get_field_index("shard"), "shard", pa.array(shards, pa.string()))
