"""Import a stage's annotation exports: check every row, vote, select up to the quota, measure
agreement, and write the stage's result.

Votes: a sample's verdict is the majority of its annotators' keep/reject answers. A tie (one
keep, one reject) resolves by the stage's goal: stage 1 optimises recall, so a tie keeps; stage
2 optimises precision, so a tie rejects. Selection: among the samples whose verdict is keep,
the stage keeps at most its quota, ordered by the share of keep votes, then the number of keep
votes, then (stage 2) the mean criterion rating, then the auto-filter score
(``curation.score_column``), then sample id.

Checks, each a ``BadRow`` naming file, row and field: unknown sample ids, samples that never
reached the stage, duplicate submissions (one annotator, one sample, different answers), missing
fields, wrong types, answers of the other stage. Bad rows fail the import with all of them
listed, or with ``skip_bad`` go to ``quarantine.parquet`` with their reasons. The same
submission read twice (the same export imported again, or two copies of it) counts once, so
re-importing is a no-op.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from photogenic.config import RunConfig
from photogenic.curation.agreement import Agreement, agreement
from photogenic.curation.export import candidates, stage_pool_ids, stage_settings
from photogenic.curation.labels import CRITERIA, KEEP, REJECT, STAGES, SUBJECTIVE, YES
from photogenic.curation.layout import CurationLayout
from photogenic.curation.submissions import (
    DUPLICATE,
    NOT_IN_STAGE,
    UNKNOWN_SAMPLE,
    BadRow,
    ParsedFile,
    Submission,
    read_export,
)
from photogenic.dataset.atomic import filesystem, write_bytes
from photogenic.dataset.commit import VersionCommit, settle
from photogenic.dataset.lock import data_root_lock
from photogenic.dataset.store import parquet_bytes
from photogenic.errors import ConfigError, DataError
from photogenic.paths import join
from photogenic.safety.parsing import storable_text

log = logging.getLogger(__name__)

#: bad rows shown in an error message; the rest are counted
_SHOWN = 10

QUARANTINE_SCHEMA = pa.schema([
    ("file", pa.string()), ("row", pa.int64()), ("field", pa.string()), ("sample_id", pa.string()),
    ("reason_code", pa.string()), ("reason", pa.string()),
])


@dataclass
class StageResult:
    stage: int
    table: pa.Table
    agreement: dict[str, Agreement]
    quarantine: list[BadRow]
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def verdict_kappa(self) -> float | None:
        return self.agreement["verdict"].kappa


def annotation_files(config: RunConfig, stage: int) -> list[str]:
    folder = CurationLayout.of(config).annotations(stage)
    fs, local = filesystem(folder)
    if not fs.exists(local):
        return []
    return sorted(p for p in fs.ls(local, detail=False) if p.lower().endswith((".json", ".csv")))


def import_stage(config: RunConfig, stage: int, files: list[str] | None = None,
                 skip_bad: bool | None = None) -> StageResult:
    """Import ``files`` (default: every export under the stage's annotations folder)."""
    stage_settings(config, stage)
    with data_root_lock(config.data.root, f"curation import, stage {stage}"):
        return _import_stage(config, stage, files, config.curation.skip_bad if skip_bad is None else skip_bad)


def _import_stage(config: RunConfig, stage: int, files: list[str] | None, skip_bad: bool) -> StageResult:
    layout = CurationLayout.of(config)
    for number in STAGES:
        settle(layout.stage(number))  # an import a crash interrupted is finished before anything is read
    files = annotation_files(config, stage) if files is None else files
    if not files:
        raise DataError(
            f"No stage-{stage} annotations under {layout.annotations(stage)}. Annotate "
            f"{layout.tasks(stage)} in Label Studio with {layout.label_config(stage)} (or fill in "
            f"{layout.tasks_csv(stage)}) and import the exports with `photogenic curation import`, or enable "
            "the simulated annotators (curation.simulate.enabled).")
    parsed = [read_export(path, stage) for path in files]
    accepted, bad = check(config, stage, parsed)
    if bad and not skip_bad:
        listed = "; ".join(b.describe() for b in bad[:_SHOWN])
        more = f" (and {len(bad) - _SHOWN} more)" if len(bad) > _SHOWN else ""
        raise DataError(f"{len(bad)} bad stage-{stage} annotation row(s): {listed}{more}. Fix the file(s), or "
                        "import with --skip-bad (curation.skip_bad) to quarantine these rows with their reasons.")
    table, agreements = tally(config, stage, accepted)
    counts = {
        "files": len(files), "submissions": len(accepted), "samples_labelled": table.num_rows,
        "kept_by_vote": sum(v == KEEP for v in table[f"stage{stage}_verdict"].to_pylist()),
        "selected": sum(table["selected"].to_pylist()), "quarantined": len(bad),
        "unanswered": sum(p.unanswered for p in parsed), "cancelled": sum(p.cancelled for p in parsed),
    }
    _write(layout, stage, table, bad, agreements, counts)
    log.info("curation stage %d import: %d files, %d submissions on %d samples → %d kept by vote, %d selected "
             "(quota %d), %d bad rows quarantined; verdict kappa %s", stage, counts["files"], counts["submissions"],
             counts["samples_labelled"], counts["kept_by_vote"], counts["selected"],
             stage_settings(config, stage).quota, len(bad), _fmt(agreements["verdict"].kappa))
    return StageResult(stage, table, agreements, bad, counts)


def check(config: RunConfig, stage: int, parsed: list[ParsedFile]) -> tuple[list[Submission], list[BadRow]]:
    """The submissions that pass every check, and the bad rows (parse problems included)."""
    known = set(candidates(config).read_manifest(["sample_id"])["sample_id"].to_pylist())
    reached = known if stage == 1 else set(stage_pool_ids(config, stage))
    bad = [row for p in parsed for row in p.bad]
    unique: dict[str, Submission] = {}
    for item in (s for p in parsed for s in p.submissions):
        if item.sample_id not in known:
            bad.append(BadRow(item.file, item.row, "sample_id", UNKNOWN_SAMPLE,
                              f"{item.sample_id!r} is not a sample of {config.curation.input!r}", item.sample_id))
        elif item.sample_id not in reached:
            bad.append(BadRow(item.file, item.row, "sample_id", NOT_IN_STAGE,
                              f"sample {item.sample_id} never reached stage {stage} (stage 1 did not select it)",
                              item.sample_id))
        else:
            unique.setdefault(item.fingerprint, item)  # the same submission read twice counts once
    by_key: dict[tuple[str, str], list[Submission]] = defaultdict(list)
    for item in unique.values():
        by_key[(item.sample_id, item.annotator)].append(item)
    accepted = []
    for (sample_id, annotator), items in by_key.items():
        if len(items) == 1:
            accepted.append(items[0])
            continue
        places = ", ".join(i.where for i in items)
        for item in items:
            bad.append(BadRow(item.file, item.row, "annotator", DUPLICATE,
                              f"{annotator} submitted sample {sample_id} {len(items)} times with different answers "
                              f"({places}); keep one export per annotator", sample_id))
    accepted.sort(key=lambda s: (s.sample_id, s.annotator))
    bad.sort(key=lambda b: (b.file, b.row or 0, b.field))
    return accepted, bad


def tally(config: RunConfig, stage: int, submissions: list[Submission]) -> tuple[pa.Table, dict[str, Agreement]]:
    """One row per labelled sample: votes, verdict, answers aggregated, selection; and the
    agreement per question."""
    settings = stage_settings(config, stage)
    score = _scores(config)
    by_sample: dict[str, list[Submission]] = defaultdict(list)
    for item in submissions:
        by_sample[item.sample_id].append(item)
    rows = [_sample_row(stage, sample_id, items) for sample_id, items in sorted(by_sample.items())]
    for row in rows:
        row["auto_filter_score"] = score.get(row["sample_id"])
    kept = [r for r in rows if r[f"stage{stage}_verdict"] == KEEP]
    kept.sort(key=lambda r: _order_key(stage, r))
    for rank, row in enumerate(kept, start=1):
        row[f"stage{stage}_rank"] = rank
    for row in rows:
        row.setdefault(f"stage{stage}_rank", None)
        row["selected"] = row[f"stage{stage}_rank"] is not None and row[f"stage{stage}_rank"] <= settings.quota
    agreements = {}
    for question in STAGES[stage].rated:
        ratings = {sample_id: [(s.annotator, s.answers[question.name]) for s in items]
                   for sample_id, items in by_sample.items()}
        agreements[question.name] = agreement(ratings)
    kappa = agreements["verdict"].kappa
    for row in rows:
        row[f"stage{stage}_agreement"] = kappa
    table = pa.Table.from_pylist(rows, schema=_result_schema(stage))
    return table, agreements


def _sample_row(stage: int, sample_id: str, items: list[Submission]) -> dict[str, Any]:
    prefix = f"stage{stage}_"
    keep = sum(s.answers["verdict"] == KEEP for s in items)
    reject = len(items) - keep
    # ties: stage 1 (recall) keeps, stage 2 (precision) rejects
    verdict = KEEP if keep > reject or (keep == reject and stage == 1) else REJECT
    row: dict[str, Any] = {
        "sample_id": sample_id,
        f"{prefix}votes": len(items),
        f"{prefix}keep_votes": keep,
        f"{prefix}keep_share": keep / len(items),
        f"{prefix}verdict": verdict,
        f"{prefix}annotators": sorted(s.annotator for s in items),
    }
    for name in CRITERIA:
        values = [s.answers[name] for s in items]
        # stage 1: share of annotators who ticked the criterion; stage 2: mean 1-5 rating
        row[f"{prefix}{name}"] = sum(float(v) for v in values) / len(values)
    if stage == 2:
        row[f"{prefix}mean_rating"] = sum(row[f"{prefix}{name}"] for name in CRITERIA) / len(CRITERIA)
        for name in SUBJECTIVE:
            row[f"{prefix}{name}"] = sum(s.answers[name] == YES for s in items) / len(items)
        row.update(_caption(items, verdict))
    return row


def _caption(items: list[Submission], verdict: str) -> dict[str, Any]:
    """The human caption: the latest non-empty one from an annotator who agreed with the verdict
    (their description is of a picture they judged as the majority did), else the latest one."""
    written = [s for s in items if (s.answers.get("caption") or "").strip()]
    agreeing = [s for s in written if s.answers["verdict"] == verdict]
    pool = agreeing or written
    if not pool:
        return {"human_caption": None, "human_caption_annotator": None, "human_caption_at": None}
    chosen = max(pool, key=lambda s: (s.submitted_at, s.annotator))
    return {"human_caption": chosen.answers["caption"], "human_caption_annotator": chosen.annotator,
            "human_caption_at": chosen.submitted_at}


def _order_key(stage: int, row: dict[str, Any]) -> tuple:
    prefix = f"stage{stage}_"
    score = row["auto_filter_score"]
    return (-row[f"{prefix}keep_share"], -row[f"{prefix}keep_votes"],
            -(row.get(f"{prefix}mean_rating") or 0.0), -(score if score is not None else float("-inf")),
            row["sample_id"])


def _scores(config: RunConfig) -> dict[str, float]:
    dataset = candidates(config)
    column = config.curation.score_column
    if column is None:
        return {}
    if column not in dataset.manifest_schema().names:
        scores = sorted(n for n in dataset.manifest_schema().names if n.startswith("score_"))
        raise ConfigError(f"curation.score_column is {column!r}, which the dataset {dataset.name!r} does not have; "
                          f"its score columns are: {', '.join(scores) or 'none'}.")
    table = dataset.read_manifest(["sample_id", column])
    return dict(zip(table["sample_id"].to_pylist(), table[column].to_pylist()))


def _result_schema(stage: int) -> pa.Schema:
    prefix = f"stage{stage}_"
    fields = [("sample_id", pa.string()), (f"{prefix}votes", pa.int32()), (f"{prefix}keep_votes", pa.int32()),
              (f"{prefix}keep_share", pa.float64()), (f"{prefix}verdict", pa.string()),
              (f"{prefix}annotators", pa.list_(pa.string()))]
    fields += [(f"{prefix}{name}", pa.float64()) for name in CRITERIA]
    if stage == 2:
        fields.append((f"{prefix}mean_rating", pa.float64()))
        fields += [(f"{prefix}{name}", pa.float64()) for name in SUBJECTIVE]
        fields += [("human_caption", pa.string()), ("human_caption_annotator", pa.string()),
                   ("human_caption_at", pa.string())]
    fields += [("auto_filter_score", pa.float64()), (f"{prefix}rank", pa.int32()), ("selected", pa.bool_()),
               (f"{prefix}agreement", pa.float64())]
    return pa.schema(fields)


def _write(layout: CurationLayout, stage: int, table: pa.Table, bad: list[BadRow],
           agreements: dict[str, Agreement], counts: dict[str, int]) -> None:
    quarantine = pa.Table.from_pylist(
        [{"file": b.file, "row": b.row, "field": b.field, "sample_id": b.sample_id, "reason_code": b.reason_code,
          "reason": storable_text(b.describe())} for b in bad], schema=QUARANTINE_SCHEMA)
    summary = {"stage": stage, "counts": counts, "agreement": {k: v.as_dict() for k, v in agreements.items()}}
    # the three change together: a crash between them must not pair one import's result with another's counts
    commit = VersionCommit(layout.stage(stage))
    try:
        for path, data in ((layout.quarantine(stage), parquet_bytes(quarantine)),
                           (layout.agreement(stage), (json.dumps(summary, indent=2, sort_keys=True) + "\n").encode()),
                           (layout.result(stage), parquet_bytes(table))):
            commit.add(path.rsplit("/", 1)[-1], data)
    except BaseException:
        commit.abort()
        raise
    commit.commit(last=layout.result(stage).rsplit("/", 1)[-1])


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def add_exports(config: RunConfig, files: list[str], stage: int | None = None,
                skip_bad: bool | None = None) -> dict[int, StageResult]:
    """``photogenic curation import``: check the files, copy them into their stage's annotations
    folder (a file already there with the same content is not copied again), and re-import the
    stage from the whole folder. Importing the same export twice therefore changes nothing."""
    with data_root_lock(config.data.root, "curation import"):
        return _add_exports(config, files, stage, skip_bad)


def _add_exports(config: RunConfig, files: list[str], stage: int | None,
                 skip_bad: bool | None) -> dict[int, StageResult]:
    by_stage: dict[int, list[str]] = defaultdict(list)
    for path in files:
        by_stage[read_export(path, stage).stage].append(path)
    layout = CurationLayout.of(config)
    results = {}
    for number in sorted(by_stage):
        # check the new files together with what is already there before copying anything
        existing = annotation_files(config, number)
        fresh = [p for p in by_stage[number] if _twin(p, existing) is None]
        parsed = [read_export(p, number) for p in existing + fresh]
        _, bad = check(config, number, parsed)
        if bad and not (config.curation.skip_bad if skip_bad is None else skip_bad):
            import_stage(config, number, files=existing + fresh, skip_bad=False)  # raises, listing them
        for path in fresh:
            name = path.rsplit("/", 1)[-1]
            target = join(layout.annotations(number), name)
            fs, local = filesystem(target)
            if fs.exists(local):  # same name, other content: keep both
                stem, _, ext = name.rpartition(".")
                target = join(layout.annotations(number), f"{stem}-{_digest(path)[:8]}.{ext}")
            write_bytes(target, _read(path))
            log.info("stage %d: added %s as %s", number, path, target)
        if not fresh:
            log.info("stage %d: every file given is already imported; nothing changes", number)
        results[number] = import_stage(config, number, skip_bad=skip_bad)
    return results


def _read(path: str) -> bytes:
    fs, local = filesystem(path)
    return fs.cat_file(local)


def _digest(path: str) -> str:
    import hashlib

    return hashlib.sha256(_read(path)).hexdigest()


def _twin(path: str, existing: list[str]) -> str | None:
    """The file under the annotations folder with the same bytes as ``path``, if any."""
    digest = _digest(path)
    return next((p for p in existing if _digest(p) == digest), None)
