"""Running the scorers over a dataset: cheap first, each only on the survivors of the others.

The per-row work runs on the data plane (photogenic.dataplane) in chunks of ``batch_size`` rows
of one input shard. The scorers, in cascade order, are cut into steps wherever the next scorer
holds a model or stops holding one: the manifest-only scorers and the cheap pixel scorers run
as Ray tasks, the model scorers (OCR, NSFW, CLIP, aesthetic) in stateful actors. A step decodes
the images still alive (one ranged read each) and hands them to its scorers in cost order, each
on the rows the ones before it kept, so a model scorer never sees a row that an earlier scorer
rejected (``CascadeResult.model_rows_on_rejected`` counts any that did).

Each input shard's rows, once all their chunks are done, are one Parquet part (photogenic.
dataplane.parts): a killed run resumes from the shards without a part. The pool-wide decisions
(near-duplicate clusters, concept quotas, top-k) then run on the merged columns. Every score a
row received, and the scorer and reason that rejected it, are recorded; a scorer never reached
by a row leaves its columns null for that row.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from photogenic.dataplane.parts import ShardParts
from photogenic.dataplane.pipeline import Chunk, Step, map_rows, run_steps
from photogenic.dataplane.session import ray_session
from photogenic.dataset.store import Dataset
from photogenic.filtering.scorer import Columns, GlobalScorer, Scorer

log = logging.getLogger(__name__)

REJECTED_BY = "filter_rejected_by"
REASON = "filter_reason"
#: a part's column holding each row's position in the input manifest (dropped at the merge)
ROW = "_row"


@dataclass
class CascadeResult:
    #: every input row, with its scores and, for rejected rows, who rejected it and why
    table: pa.Table
    #: rows alive after each scorer, in cascade order: the funnel
    funnel: list[tuple[str, int]] = field(default_factory=list)
    reasons: Counter = field(default_factory=Counter)
    #: rows that a model scorer scored although an earlier scorer had rejected them (0: the
    #: cascade's promise, counted from the columns)
    model_rows_on_rejected: int = 0
    #: input shards this run scored, and those whose parts a killed run had left
    shards_scored: int = 0
    shards_reused: int = 0

    @property
    def survivors(self) -> pa.Table:
        return self.table.filter(pa.compute.is_null(self.table[REJECTED_BY]))


@dataclass
class _Batch:
    """A chunk of rows of one input shard, as it travels through the steps: its manifest rows
    as Arrow (what travels), as dicts only inside a step (what the scorers take)."""

    table: pa.Table
    #: each row's position in the input manifest
    index: list[int]
    columns: Columns
    rejected_by: list[str | None]
    reasons: list[str | None]

    @functools.cached_property
    def rows(self) -> list[dict[str, Any]]:
        return self.table.to_pylist()

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "rows"}

    def alive(self) -> list[int]:
        return [i for i, r in enumerate(self.rejected_by) if r is None]

    def apply(self, scorer: Scorer, index: list[int], columns: Columns, reasons: list[str | None]) -> None:
        for name, values in columns.items():
            column = self.columns.setdefault(name, [None] * len(self.index))
            for i, value in zip(index, values):
                column[i] = value
        for i, reason in zip(index, reasons):
            if reason is not None:
                self.rejected_by[i], self.reasons[i] = scorer.name, reason


def order(scorers: list[Scorer]) -> list[Scorer]:
    """Manifest-only scorers first, then pixel scorers, cheapest first within each; pool-wide
    scorers decide last, in their ``decision_rank`` order (their per-row part still runs with
    the other manifest or pixel scorers)."""
    def key(s: Scorer) -> tuple:
        pool_wide = isinstance(s, GlobalScorer)
        # the name last: the order never depends on which module happened to be imported first
        return (pool_wide, s.decision_rank if pool_wide else 0, s.needs_pixels, s.cost_ms, s.name)

    return sorted(scorers, key=key)


def per_row_order(scorers: list[Scorer]) -> list[Scorer]:
    """The order rows meet the scorers: every manifest-only scorer, then the pixel scorers."""
    ordered = order(scorers)
    return [s for s in ordered if not s.needs_pixels] + [s for s in ordered if s.needs_pixels]


def steps_of(scorers: list[Scorer]) -> list[list[Scorer]]:
    """The cascade cut where the next scorer holds a model or stops holding one (the first
    step also takes the manifest-only scorers, which cost nothing next to a decode)."""
    steps: list[list[Scorer]] = []
    for scorer in per_row_order(scorers):
        if steps and steps[-1][-1].holds_model == scorer.holds_model:
            steps[-1].append(scorer)
        else:
            steps.append([scorer])
    return steps


def run_cascade(dataset: Dataset, scorers: list[Scorer], *, workers: int = 2, batch_size: int = 32,
                progress: bool = True, gpus: float = 0.0, parts_dir: str | None = None,
                fingerprint: str = "") -> CascadeResult:
    """``workers``: Ray workers per step (0: every step in this process, without Ray);
    ``gpus``: GPUs each model actor asks for; ``parts_dir``: where the per-shard parts go
    (default: a temporary folder, so nothing resumes); ``fingerprint``: what the parts were made
    from (a folder holding parts of another fingerprint is cleared)."""
    scorers = order(scorers)
    manifest = dataset.read_manifest()
    if parts_dir is None:
        with tempfile.TemporaryDirectory(prefix="cascade-parts-") as scratch:
            return _run(dataset, manifest, scorers, workers, batch_size, progress, gpus, ShardParts(scratch, ""))
    return _run(dataset, manifest, scorers, workers, batch_size, progress, gpus, ShardParts(parts_dir, fingerprint))


def _run(dataset: Dataset, manifest: pa.Table, scorers: list[Scorer], workers: int, batch_size: int,
         progress: bool, gpus: float, parts: ShardParts) -> CascadeResult:
    shards = _shard_rows(manifest)
    pending = parts.pending(list(shards))
    if parts.reused:
        log.info("auto-filter: %d of %d input shards already scored by an interrupted run; scoring the other %d",
                 parts.reused, len(shards), len(pending))
    chunks = [Chunk(key, len(index[i:i + batch_size]), _batch(manifest, index[i:i + batch_size]))
              for key in pending for index in [shards[key]] for i in range(0, len(index), batch_size)]
    steps = [Step(name="+".join(s.name for s in group), make=functools.partial(CascadeStep, group, dataset.path),
                  holds_model=group[-1].holds_model, workers=max(workers, 1),
                  num_gpus=gpus if group[-1].holds_model else 0.0)
             for group in steps_of(scorers)]
    done: dict[str, list[_Batch]] = defaultdict(list)
    remaining = {key: len(shards[key]) for key in pending}
    with ray_session() if workers and chunks else contextlib.nullcontext():
        for chunk in run_steps(chunks, steps, workers=workers, desc=f"filter {dataset.name}", progress=progress,
                               total_rows=sum(remaining.values())):
            done[chunk.key].append(chunk.payload)
            remaining[chunk.key] -= chunk.rows
            if remaining[chunk.key] == 0:  # the shard is complete: its part, and nothing of it kept here
                parts.write(chunk.key, _part(manifest.schema, done.pop(chunk.key)))
    merged = _merge([parts.read(key) for key in shards], manifest.schema)
    for scorer in scorers:
        if isinstance(scorer, GlobalScorer):
            merged = _decide(merged, scorer)
    table = _final(merged, manifest.schema)
    rejected_by = table[REJECTED_BY].to_pylist()
    return CascadeResult(table=table, funnel=_funnel(table.num_rows, rejected_by, scorers),
                         reasons=Counter(r for r in rejected_by if r),
                         model_rows_on_rejected=_model_rows_on_rejected(table, scorers),
                         shards_scored=len(pending), shards_reused=parts.reused)


class CascadeStep:
    """One step of the cascade, on a chunk: its scorers in order, each on the rows still alive;
    the pixels of those rows are read and decoded once, at the step's first pixel scorer. In an
    actor the scorers (and the models they load on first use) live as long as the actor."""

    def __init__(self, scorers: list[Scorer], dataset_path: str):
        self.scorers = scorers
        self.dataset = Dataset(dataset_path)

    def __call__(self, batch: _Batch) -> _Batch:
        images: dict[int, np.ndarray] | None = None
        for scorer in self.scorers:
            index = batch.alive()
            if not index:
                break
            if scorer.needs_pixels and images is None:
                images = {i: np.asarray(self.dataset.load_image(batch.rows[i])) for i in index}
            columns = scorer.score([batch.rows[i] for i in index],
                                   [images[i] for i in index] if scorer.needs_pixels else None)
            batch.apply(scorer, index, columns, scorer.reasons(columns))
        return batch


def _shard_rows(manifest: pa.Table) -> dict[str, list[int]]:
    """Each input shard's rows (positions in the manifest), shards in order of appearance."""
    shards: dict[str, list[int]] = {}
    for i, shard in enumerate(manifest.column("shard").to_pylist()):
        shards.setdefault(str(shard), []).append(i)
    return shards


def _batch(manifest: pa.Table, index: list[int]) -> _Batch:
    return _Batch(manifest.take(pa.array(index, pa.int64())), index, {}, [None] * len(index), [None] * len(index))


def score_every_row(dataset: Dataset, scorers: list[Scorer], rows: list[dict[str, Any]], *, workers: int = 2,
                    batch_size: int = 32, progress: bool = True, gpus: float = 0.0) -> Columns:
    """Every scorer's columns for every row: no thresholds, no early stop (what calibrating
    thresholds needs: the scores of rows the current thresholds would reject too). On the data
    plane, in batches of ``batch_size`` rows in the order given (a model's scores may depend on
    its batch), ``workers`` at once: actors when a scorer holds a model (``gpus`` each)."""
    models = any(s.holds_model for s in scorers)
    step = Step(name="score every row", make=functools.partial(ScoreEveryRow, scorers, dataset.path),
                holds_model=models, workers=min(workers, len(rows)), num_gpus=gpus if models else 0.0)
    names: list[str] = []
    values: list[dict[str, Any]] = []
    # one key for all: chunks are then rows[i:i + batch_size], whatever the rows' shards
    for _, scored in map_rows(rows, lambda row: row, step, key=lambda row: dataset.name, batch_size=batch_size,
                              desc=f"score {dataset.name}", progress=progress, total=len(rows)):
        names.extend(name for name in scored if name not in names)
        values.append(scored)
    return {name: [row.get(name) for row in values] for name in names}


class ScoreEveryRow:
    """The data plane's step for ``score_every_row``: every scorer on a batch of rows, the
    scores handed back row by row."""

    def __init__(self, scorers: list[Scorer], dataset_path: str):
        self.scorers = scorers
        self.dataset = Dataset(dataset_path)
        self.pixels = any(s.needs_pixels for s in scorers)

    def __call__(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        images = [np.asarray(self.dataset.load_image(row)) for row in rows] if self.pixels else None
        columns: Columns = {}
        for scorer in self.scorers:
            columns.update(scorer.score(rows, images if scorer.needs_pixels else None))
        return [{name: values[i] for name, values in columns.items()} for i in range(len(rows))]


def _part(schema: pa.Schema, batches: list[_Batch]) -> pa.Table:
    """One shard's rows with every score they got, who rejected them and why, and their
    positions in the manifest."""
    names = sorted({name for batch in batches for name in batch.columns})
    table = pa.concat_tables([batch.table for batch in batches]).cast(schema)
    for name in names:
        table = table.append_column(name, pa.array([value for batch in batches
                                                    for value in batch.columns.get(name, [None] * len(batch.index))]))
    table = table.append_column(ROW, pa.array([i for batch in batches for i in batch.index], pa.int64()))
    table = table.append_column(REJECTED_BY, pa.array([r for batch in batches for r in batch.rejected_by], pa.string()))
    return table.append_column(REASON, pa.array([r for batch in batches for r in batch.reasons], pa.string()))


def _merge(parts: list[pa.Table], schema: pa.Schema) -> pa.Table:
    """The parts as one table in manifest order (a column some part lacks is null there)."""
    if not parts:
        empty = schema.empty_table()
        return empty.append_column(ROW, pa.array([], pa.int64())).append_column(
            REJECTED_BY, pa.array([], pa.string())).append_column(REASON, pa.array([], pa.string()))
    merged = pa.concat_tables(parts, promote_options="permissive")
    return merged.take(pc.sort_indices(merged[ROW]))


def _decide(table: pa.Table, scorer: GlobalScorer) -> pa.Table:
    """Run a pool-wide decision on every row still alive, on the merged columns, and write its
    verdicts back."""
    alive = np.flatnonzero(table[REJECTED_BY].is_null().to_numpy(zero_copy_only=False))
    survivors = table.take(pa.array(alive, pa.int64())).to_pylist()
    columns, reasons = scorer.decide(survivors)
    for name, values in columns.items():
        full = table[name].to_pylist() if name in table.column_names else [None] * table.num_rows
        for j, i in enumerate(alive):
            full[i] = values[j]
        table = _put(table, name, pa.array(full))
    rejected_by, why = table[REJECTED_BY].to_pylist(), table[REASON].to_pylist()
    for j, i in enumerate(alive):
        if reasons[j] is not None:
            rejected_by[i], why[i] = scorer.name, reasons[j]
    table = _put(table, REJECTED_BY, pa.array(rejected_by, pa.string()))
    return _put(table, REASON, pa.array(why, pa.string()))


def _put(table: pa.Table, name: str, values: pa.Array) -> pa.Table:
    if name in table.column_names:
        return table.set_column(table.schema.get_field_index(name), name, values)
    return table.append_column(name, values)


def _final(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """The manifest's columns, then the scores by name, then who rejected each row and why."""
    scores = sorted(set(table.column_names) - set(schema.names) - {ROW, REJECTED_BY, REASON})
    out = table.select([*schema.names, *scores, REJECTED_BY, REASON]).combine_chunks()
    fields = [*schema, *(out.schema.field(name) for name in [*scores, REJECTED_BY, REASON])]
    return out.cast(pa.schema(fields, metadata=schema.metadata))


def _model_rows_on_rejected(table: pa.Table, scorers: list[Scorer]) -> int:
    """Rows carrying a score from a model scorer although a scorer before it had rejected them."""
    ordered = per_row_order(scorers)
    rejected_by = table[REJECTED_BY]
    count = 0
    for position, scorer in enumerate(ordered):
        if not scorer.holds_model:
            continue
        earlier = pa.array([s.name for s in ordered[:position]], pa.string())
        mine = [name for name in table.column_names
                if name == scorer.column() or name.startswith(scorer.column() + "_")]
        if not mine:
            continue
        scored = functools.reduce(pc.or_, [pc.is_valid(table[name]) for name in mine])
        count += pc.sum(pc.and_(scored, pc.is_in(rejected_by, value_set=earlier))).as_py() or 0
    return count


def _funnel(total: int, rejected_by: list[str | None], scorers: list[Scorer]) -> list[tuple[str, int]]:
    counts = Counter(r for r in rejected_by if r)
    alive, funnel = total, [("input", total)]
    for scorer in scorers:
        alive -= counts.get(scorer.name, 0)
        funnel.append((scorer.name, alive))
    return funnel
