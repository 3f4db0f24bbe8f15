"""Auto-filter: run the scorer cascade over the ingested dataset and write the candidate pool.

The cascade runs on the data plane (photogenic.dataplane: Ray Data, local or ``RAY_ADDRESS``),
one Parquet part per input shard under ``<output>/parts/`` as the shards finish; a killed run
started again with the same input and parameters scores only the shards without a part, and
the parts are removed once the dataset is written.

The candidate dataset's manifest holds the surviving rows with every score they received; its
images stay in the input dataset's shards (the manifest points there), because filtering makes
no new pixels. The rejected rows, with their scores, the scorer that rejected them and why, are
written beside it in ``rejected.parquet``, so a rejection can always be audited and undone.
"""

from __future__ import annotations

import logging
import math
import sys
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from photogenic.config import RunConfig
from photogenic.dataplane.parts import PARTS, discard_parts, fingerprint
from photogenic.dataset.accounting import CARD_KEY, KEPT, REJECTED as ROW_REJECTED, count_by_shard
from photogenic.dataset.ref import DatasetRef
from photogenic.dataset.schema import QUARANTINE_SCHEMA
from photogenic.dataset.store import Dataset, parquet_bytes, repoint_shards
from photogenic.dataset.upstream import upstream_entries
from photogenic.filtering.cascade import REASON, REJECTED_BY, CascadeResult, run_cascade
from photogenic.filtering.registry import build_scorers, gate_checks, scorers_off
from photogenic.filtering.report import write_funnel_report
from photogenic.filtering.scorer import Scorer
from photogenic.paths import dataset_dir, is_url, join
from photogenic.stages.inputs import open_input
from photogenic.stages.spec import Resources, StageOutput, StageSpec

log = logging.getLogger(__name__)

REJECTED = "rejected.parquet"


@dataclass
class FilterResult:
    ref: DatasetRef
    funnel: list[tuple[str, int]]
    reasons: dict[str, int]
    #: the funnel report (HTML), beside the dataset folder
    report: str
    #: input shards scored by this run, and reused from a killed one
    shards: dict[str, int] | None = None
    model_rows_on_rejected: int = 0


def auto_filter(config: RunConfig, progress: bool = True, input_ref: DatasetRef | None = None) -> FilterResult:
    """``input_ref``: the dataset to filter as a runner hands it (else the one filter.input names)."""
    settings = config.filter
    source = open_input(config.data.root, "filter", settings.input, settings.output, made_by="ingest",
                        ref=input_ref)
    scorers = build_scorers(config)
    log.info("auto-filter cascade: %s", " → ".join(s.name for s in scorers))
    target = Dataset(dataset_dir(config.data.root, settings.output), name=settings.output)
    parts = join(target.path, PARTS)
    result = run_cascade(source, scorers, workers=settings.workers, batch_size=settings.batch_size, progress=progress,
                         gpus=settings.gpus, parts_dir=parts, fingerprint=_fingerprint(source, scorers, config))
    ref = _write(source, target, result, scorers, config, input_ref)
    discard_parts(parts)
    # beside the dataset, not in it: the report is for people, the dataset's md5 is for DVC
    described = [s.describe() for s in scorers] + scorers_off(config)
    report = write_funnel_report(result, source, described, report_path(target))
    _log_to_mlflow(report)
    log.info("auto-filter %s → %s: %s", settings.input, settings.output,
             " → ".join(f"{name} {count}" for name, count in result.funnel))
    log.info("funnel report: %s", report)
    return FilterResult(ref=ref, funnel=result.funnel, reasons=dict(result.reasons), report=report,
                        shards={"scored": result.shards_scored, "reused": result.shards_reused},
                        model_rows_on_rejected=result.model_rows_on_rejected)


def _fingerprint(source: Dataset, scorers: list[Scorer], config: RunConfig) -> str:
    """What the parts depend on: the input manifest and every scorer's settings (not the
    workers, GPUs or chunk size, which change how, not what)."""
    params = config.filter.model_dump(mode="json", exclude={"workers", "gpus", "batch_size"})
    return fingerprint(source.ref().content_hash, [s.describe() for s in scorers], params)


def report_path(dataset: Dataset) -> str:
    return f"{dataset.path}.funnel.html"


def _write(source: Dataset, target: Dataset, result: CascadeResult, scorers: list[Scorer],
           config: RunConfig, source_ref: DatasetRef | None) -> DatasetRef:
    table = repoint_shards(result.table, source, target)
    survivors = table.filter(pa.compute.is_null(table[REJECTED_BY])).drop_columns([REJECTED_BY, REASON])
    rejected = table.filter(pa.compute.is_valid(table[REJECTED_BY]))
    card: dict[str, Any] = {
        "name": target.name,
        "stage": "auto_filter",
        "input": source.name,
        "upstream": upstream_entries(source, source_ref),
        "rows": survivors.num_rows,
        "rejected": rejected.num_rows,
        "funnel": [{"after": name, "rows": count} for name, count in result.funnel],
        "rejections_by_scorer": dict(sorted(result.reasons.items())),
        # by the input's shard names, as its manifest holds them (before they are repointed)
        CARD_KEY: count_by_shard((shard, KEPT if by is None else ROW_REJECTED) for shard, by in
                                 zip(result.table["shard"].to_pylist(), result.table[REJECTED_BY].to_pylist())),
        "scorers": [s.describe() for s in scorers],
        "scorers_off": scorers_off(config),
        # what decided, not where it ran: the GPUs do not change a score
        "params": config.filter.model_dump(mode="json", exclude={"gpus"}),
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


def _run(config: RunConfig, progress: bool, inputs: dict[str, DatasetRef] | None = None) -> StageOutput:
    result = auto_filter(config, progress=progress, input_ref=(inputs or {}).get("filter.input"))
    stats = {"funnel": dict(result.funnel), "rejections": result.reasons, "shards": result.shards,
             "model_scorers_on_rejected_rows": result.model_rows_on_rejected}
    return StageOutput(ref=result.ref, stats=stats,
                       reports={"funnel_report": result.report})


def _gate_params(config: RunConfig) -> dict[str, Any]:
    """What every scorer that ran checks on the candidates (photogenic.filtering.registry.gate_checks)."""
    checks = gate_checks(config)
    return {"score_bounds": checks.bounds, "nullable_scores": checks.nullable, "unique_scores": checks.unique,
            "max_rows": checks.max_rows}


def _resources(config: RunConfig) -> Resources:
    """GPUs for the model actors when the config gives them some (filter.gpus each)."""
    settings = config.filter
    return Resources(cpus=2, memory_gb=4, gpus=math.ceil(settings.gpus * max(settings.workers, 1)))


SPEC = StageSpec(
    name="auto_filter",
    description="Score the ingested dataset with the scorer cascade, cheap scorers first, and "
    "write the candidate pool for human curation, with every score and rejection reason.",
    run=_run,
    params=("data", "filter"),
    gate="auto_filter",
    gate_params=_gate_params,
    resources=Resources(cpus=2, memory_gb=4),
    config_resources=_resources,
    inputs=("filter.input",),
    outputs=("filter.output",),
)
