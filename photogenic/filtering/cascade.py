"""Running the scorers over a dataset: cheap first, each only on the survivors of the others.

The manifest is streamed in batches. Scorers that need only manifest columns run in the main
process; scorers that need pixels run in worker processes, which read each surviving image with
one ranged read, decode it once, and hand it to the pixel scorers in cost order, stopping at the
first rejection. Every score a row received, and the scorer and reason that rejected it, are
recorded; a scorer never reached by a row leaves its columns null for that row.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
from tqdm.auto import tqdm

from photogenic.dataset.store import Dataset
from photogenic.filtering.scorer import Columns, GlobalScorer, Scorer
from photogenic.parallel import ordered_map

REJECTED_BY = "filter_rejected_by"
REASON = "filter_reason"

#: scorers a worker process holds, set once per worker by ``_init_worker``
_WORKER_SCORERS: list[Scorer] = []


@dataclass
class CascadeResult:
    #: every input row, with its scores and, for rejected rows, who rejected it and why
    table: pa.Table
    #: rows alive after each scorer, in cascade order: the funnel
    funnel: list[tuple[str, int]] = field(default_factory=list)
    reasons: Counter = field(default_factory=Counter)

    @property
    def survivors(self) -> pa.Table:
        return self.table.filter(pa.compute.is_null(self.table[REJECTED_BY]))


@dataclass
class _Batch:
    rows: list[dict[str, Any]]
    columns: Columns
    rejected_by: list[str | None]
    reasons: list[str | None]

    def alive(self) -> list[int]:
        return [i for i, r in enumerate(self.rejected_by) if r is None]

    def apply(self, scorer: Scorer, index: list[int], columns: Columns, reasons: list[str | None]) -> None:
        for name, values in columns.items():
            column = self.columns.setdefault(name, [None] * len(self.rows))
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


def run_cascade(dataset: Dataset, scorers: list[Scorer], *, workers: int = 2, batch_size: int = 32,
                progress: bool = True) -> CascadeResult:
    scorers = order(scorers)
    row_scorers = [s for s in scorers if not s.needs_pixels]
    pixel_scorers = [s for s in scorers if s.needs_pixels]
    total = dataset.num_rows()

    def prepare(batch: _Batch) -> tuple[str, list[dict[str, Any]]]:
        """Runs in the main process as the batch is sent: the manifest-only scorers."""
        for scorer in row_scorers:
            _score_in_place(batch, scorer)
        return dataset.path, [batch.rows[i] for i in batch.alive()]

    batches = _batches(dataset, batch_size)
    done: list[_Batch] = []
    with tqdm(total=total, desc=f"filter {dataset.name}", unit="img", disable=not progress) as bar:
        for batch, pixel_results in ordered_map(
            _score_pixels, batches, prepare, workers=workers if pixel_scorers else 0, batch_size=1,
            inflight=2 * max(workers, 1), initializer=_init_worker, initargs=(pixel_scorers,),
        ):
            index = batch.alive()
            for scorer, (columns, reasons) in zip(pixel_scorers, pixel_results):
                batch.apply(scorer, index, columns, reasons)
            done.append(batch)
            bar.update(len(batch.rows))
    for scorer in scorers:
        if isinstance(scorer, GlobalScorer):
            _decide(done, scorer)
    return _result(dataset, done, scorers)


def _decide(batches: list[_Batch], scorer: GlobalScorer) -> None:
    """Run a pool-wide decision on every row still alive, and write its verdicts back."""
    alive = [(batch, i) for batch in batches for i in batch.alive()]
    survivors = [{**batch.rows[i], **{k: v[i] for k, v in batch.columns.items()}} for batch, i in alive]
    columns, reasons = scorer.decide(survivors)
    for j, (batch, i) in enumerate(alive):
        batch.apply(scorer, [i], {name: [values[j]] for name, values in columns.items()}, [reasons[j]])


def _batches(dataset: Dataset, size: int) -> Iterator[_Batch]:
    for record_batch in dataset.iter_manifest(batch_size=size):
        rows = record_batch.to_pylist()
        yield _Batch(rows, {}, [None] * len(rows), [None] * len(rows))


def _score_in_place(batch: _Batch, scorer: Scorer) -> None:
    index = batch.alive()
    if not index:
        return
    rows = [batch.rows[i] for i in index]
    columns = scorer.score(rows, None)
    batch.apply(scorer, index, columns, scorer.reasons(columns))


def _init_worker(scorers: list[Scorer]) -> None:
    _WORKER_SCORERS[:] = scorers


def _score_pixels(task: tuple[str, list[dict[str, Any]]]) -> list[tuple[Columns, list[str | None]]]:
    """In a worker: decode each surviving image once, run the pixel scorers in cost order, each
    on the rows the ones before it kept. Rows a scorer never saw get None in its columns."""
    path, rows = task
    if not _WORKER_SCORERS:  # only manifest scorers configured: no pixels to read at all
        return []
    dataset = Dataset(path)
    images = [np.asarray(dataset.load_image(row)) for row in rows]
    alive = list(range(len(rows)))
    results = []
    for scorer in _WORKER_SCORERS:
        columns = scorer.score([rows[i] for i in alive], [images[i] for i in alive]) if alive else {}
        reasons = scorer.reasons(columns) if alive else []
        results.append((_spread(columns, alive, len(rows)), _spread_list(reasons, alive, len(rows))))
        alive = [i for i, reason in zip(alive, reasons) if reason is None]
    return results


def score_every_row(dataset: Dataset, scorers: list[Scorer], rows: list[dict[str, Any]], *, workers: int = 2,
                    batch_size: int = 32, progress: bool = True) -> Columns:
    """Every scorer's columns for every row: no thresholds, no early stop (what calibrating
    thresholds needs: the scores of rows the current thresholds would reject too)."""
    columns: Columns = {}
    batches = [rows[i:i + batch_size] for i in range(0, len(rows), batch_size)]
    with tqdm(total=len(rows), desc=f"score {dataset.name}", unit="img", disable=not progress) as bar:
        for batch, scored in ordered_map(_score_all, batches, lambda b: (dataset.path, b), workers=workers,
                                         batch_size=1, inflight=2 * max(workers, 1), initializer=_init_worker,
                                         initargs=(scorers,)):
            for name, values in scored.items():
                columns.setdefault(name, []).extend(values)
            bar.update(len(batch))
    return columns


def _score_all(task: tuple[str, list[dict[str, Any]]]) -> Columns:
    """In a worker: every scorer on every row of the batch."""
    path, rows = task
    dataset = Dataset(path)
    pixels = any(s.needs_pixels for s in _WORKER_SCORERS)
    images = [np.asarray(dataset.load_image(row)) for row in rows] if pixels else None
    columns: Columns = {}
    for scorer in _WORKER_SCORERS:
        columns.update(scorer.score(rows, images if scorer.needs_pixels else None))
    return columns


def _spread(columns: Columns, index: list[int], size: int) -> Columns:
    return {name: _spread_list(values, index, size) for name, values in columns.items()}


def _spread_list(values: list[Any], index: list[int], size: int) -> list[Any]:
    out: list[Any] = [None] * size
    for i, value in zip(index, values):
        out[i] = value
    return out


def _result(dataset: Dataset, batches: list[_Batch], scorers: list[Scorer]) -> CascadeResult:
    names = sorted({name for batch in batches for name in batch.columns})
    rows = [row for batch in batches for row in batch.rows]
    extra: dict[str, list[Any]] = {name: [] for name in names}
    rejected_by: list[str | None] = []
    reasons: list[str | None] = []
    for batch in batches:
        for name in names:
            extra[name].extend(batch.columns.get(name, [None] * len(batch.rows)))
        rejected_by.extend(batch.rejected_by)
        reasons.extend(batch.reasons)
    table = pa.Table.from_pylist(rows, schema=dataset.manifest_schema())
    for name in names:
        table = table.append_column(name, pa.array(extra[name]))
    table = table.append_column(REJECTED_BY, pa.array(rejected_by, pa.string()))
    table = table.append_column(REASON, pa.array(reasons, pa.string()))
    return CascadeResult(table=table, funnel=_funnel(len(rows), rejected_by, scorers),
                         reasons=Counter(r for r in rejected_by if r))


def _funnel(total: int, rejected_by: list[str | None], scorers: list[Scorer]) -> list[tuple[str, int]]:
    counts = Counter(r for r in rejected_by if r)
    alive, funnel = total, [("input", total)]
    for scorer in scorers:
        alive -= counts.get(scorer.name, 0)
        funnel.append((scorer.name, alive))
    return funnel
