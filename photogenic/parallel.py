"""Ordered, bounded parallel map over a stream, for per-item CPU work such as decoding.

Items are sent to worker processes in batches, several batches in flight, and results come back
in input order; memory holds at most ``inflight`` batches, however long the stream. This is
what lets ingest decode a pool far larger than memory on every core.
"""

from __future__ import annotations

import itertools
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
A = TypeVar("A")
R = TypeVar("R")


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
) -> Iterator[tuple[T, R]]:
    """Yield ``(item, func(to_arg(item)))`` in input order, computed in ``workers`` processes
    (in this process when ``workers`` is 0). ``func`` must be importable by spawned workers;
    ``initializer(*initargs)`` runs once per worker first (to load models once, say)."""
    batches = _batched(items, batch_size)
    if workers == 0:
        if initializer is not None:
            initializer(*initargs)
        for batch in batches:
            yield from zip(batch, map(func, map(to_arg, batch)))
        return
    depth = inflight or 2 * workers
    # spawn, not fork: the caller may be a threaded orchestrator process
    with multiprocessing.get_context("spawn").Pool(workers, initializer, initargs) as pool:
        pending: deque = deque()
        for batch in batches:
            chunk = max(1, len(batch) // (2 * workers))
            pending.append((batch, pool.map_async(func, [to_arg(i) for i in batch], chunksize=chunk)))
            if len(pending) >= depth:
                done, future = pending.popleft()
                yield from zip(done, future.get())
        while pending:
            done, future = pending.popleft()
            yield from zip(done, future.get())
        # let workers exit on their own: terminating them (what leaving the block does) can kill
        # a worker while a native thread pool is still up, which aborts it noisily
        pool.close()
        pool.join()


def _batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch
