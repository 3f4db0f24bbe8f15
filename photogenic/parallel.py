"""Ordered, bounded parallel map over a stream, for per-item CPU work such as decoding.

Items are sent to worker processes in batches, several batches in flight, and results come back
in input order; memory holds at most ``inflight`` batches, however long the stream. Packaging
and upsampling run on it (ingest's and the auto-filter's per-row work is on the data plane,
``photogenic.dataplane``, on Ray).

A worker can die under an item (the out-of-memory killer, a crash in a native decoder). The
pool notices (``concurrent.futures`` marks it broken, where ``multiprocessing.Pool`` waited
forever for the lost task), starts anew, and runs the items whose results were lost one at a
time: an item that kills its worker twice is the culprit and gets ``on_worker_death``'s result
(or stops the run with ``WorkerDied`` naming it); one that survives its second try was the
victim of something else, and its result is used. Nothing is lost and nothing waits forever.
"""

from __future__ import annotations

import itertools
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from photogenic.errors import WorkerDied

T = TypeVar("T")
A = TypeVar("A")
R = TypeVar("R")

#: tries an item gets, each in a fresh pool, before it counts as the one that kills its worker
ITEM_TRIES = 2


def ordered_map(
    func: Callable[[A], R],
    items: Iterable[T],
    to_arg: Callable[[T], A],
    *,
    workers: int,
    batch_size: int = 64,
    inflight: int | None = None,
    initializer: Callable[..., None] | None = None,
    initargs: tuple = (),
    on_worker_death: Callable[[T, str], R] | None = None,
) -> Iterator[tuple[T, R]]:
    """Yield ``(item, func(to_arg(item)))`` in input order, computed in ``workers`` processes
    (in this process when ``workers`` is 0). ``func`` must be importable by spawned workers;
    ``initializer(*initargs)`` runs once per worker first (to load models once, say).
    ``on_worker_death(item, message)``: the result for an item whose worker died under it twice;
    without it such an item raises ``WorkerDied``."""
    batches = _batched(items, batch_size)
    if workers == 0:
        if initializer is not None:
            initializer(*initargs)
        for batch in batches:
            yield from zip(batch, map(func, map(to_arg, batch)))
        return
    pool = _Pool(workers, initializer, initargs)
    try:
        depth = inflight or 2 * workers
        pending: deque[tuple[list, list[tuple[int, Future]]]] = deque()
        for batch in batches:
            pending.append((batch, pool.submit_batch(func, [to_arg(i) for i in batch])))
            if len(pending) >= depth:
                yield from _collect(pool, func, to_arg, pending, on_worker_death)
        while pending:
            yield from _collect(pool, func, to_arg, pending, on_worker_death)
    finally:
        pool.close()


def _collect(pool: _Pool, func, to_arg, pending: deque, on_worker_death) -> Iterator[tuple]:
    """The oldest pending batch's results; after a worker death, every batch still pending is
    finished item by item (its finished chunks keep their results)."""
    batch, chunks = pending[0]
    try:
        results = [r for _, future in chunks for r in future.result()]
    except BrokenProcessPool:
        lost = list(pending)
        pending.clear()
        pool.restart()
        for items, parts in lost:
            yield from _salvage(pool, func, to_arg, items, parts, on_worker_death)
        return
    pending.popleft()
    yield from zip(batch, results)


def _salvage(pool: _Pool, func, to_arg, items: list, chunks: list[tuple[int, Future]], on_worker_death):
    starts = [start for start, _ in chunks] + [len(items)]
    for (start, future), end in zip(chunks, starts[1:]):
        if future.done() and not future.cancelled() and future.exception() is None:
            yield from zip(items[start:end], future.result())
            continue
        for item in items[start:end]:
            yield item, _alone(pool, func, to_arg, item, on_worker_death)


def _alone(pool: _Pool, func, to_arg, item, on_worker_death):
    """Run one item by itself, in a fresh pool after each death."""
    for _ in range(ITEM_TRIES):
        try:
            return pool.submit_batch(func, [to_arg(item)])[0][1].result()[0]
        except BrokenProcessPool:
            pool.restart()
    message = (f"a worker process died {ITEM_TRIES} times while processing this item alone (killed, e.g. by the "
               "out-of-memory killer, or crashed in native code)")
    if on_worker_death is None:
        raise WorkerDied(f"{message}: {item!r:.300}. Give the workers more memory, or remove the item.")
    return on_worker_death(item, message)


class _Pool:
    """A spawn-context process pool that can be started anew after a worker died."""

    def __init__(self, workers: int, initializer, initargs: tuple):
        self.workers, self.initializer, self.initargs = workers, initializer, initargs
        self.executor = self._start()

    def _start(self) -> ProcessPoolExecutor:
        # spawn, not fork: the caller may be a threaded orchestrator process
        return ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=self.initializer, initargs=self.initargs)

    def submit_batch(self, func, args: list) -> list[tuple[int, Future]]:
        """The batch in chunks spread over the workers: (first index, future of its results)."""
        chunk = max(1, len(args) // (2 * self.workers))
        return [(start, self._submit(func, args[start:start + chunk])) for start in range(0, len(args), chunk)]

    def _submit(self, func, args: list) -> Future:
        try:
            return self.executor.submit(_run_chunk, func, args)
        except BrokenProcessPool as exc:  # a worker died since the last look: collected like any lost chunk
            lost: Future = Future()
            lost.set_exception(exc)
            return lost

    def restart(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.executor = self._start()

    def close(self) -> None:
        # let workers finish and exit on their own: terminating them can kill a worker while a
        # native thread pool is still up, which aborts it noisily
        self.executor.shutdown(wait=True, cancel_futures=True)


def _run_chunk(func, args: list) -> list:
    return [func(a) for a in args]


def _batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch
