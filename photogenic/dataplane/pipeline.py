"""A stage's per-row work as a Ray Data pipeline of steps over chunks of rows.

A chunk is a few dozen rows of one input shard (its ``key``), carried as one pickled payload, so
every step sees whole chunks whatever Ray does with blocks, and the driver can tell when a
shard is complete. A step is a function of a payload returning the next payload:

- a cheap step runs as Ray tasks (``map_batches`` with a function, at most ``workers`` at once);
- a step that holds a model runs in stateful actors (``map_batches`` with a callable class, an
  actor pool of 1 to ``workers``, ``num_gpus`` each): the model loads once per actor.

A worker that dies (OOM, SIGKILL) costs a retry of the chunk it held, up to ``RETRIES`` times:
an actor is restarted, a task re-run; a chunk that kills its worker every time fails the stage
instead of hanging it. With ``workers=0`` the steps run here, in order, without Ray (tests, and
machines where a Ray would cost more than the work).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from tqdm.auto import tqdm

#: how often a chunk is retried after its worker died
RETRIES = 3


@dataclass(frozen=True)
class Chunk:
    """One unit of work: ``rows`` rows of the input shard ``key``, in ``payload``."""

    key: str
    rows: int
    payload: Any


@dataclass(frozen=True)
class Step:
    name: str
    #: the step: ``make()`` returns the callable ``payload -> payload``; an actor calls it once
    #: (and keeps what it loaded), a task once per chunk
    make: Callable[[], Callable[[Any], Any]]
    #: True: a stateful actor pool (models); False: tasks
    holds_model: bool = False
    workers: int = 1
    num_gpus: float = 0.0
    num_cpus: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict)


def run_steps(chunks: Iterable[Chunk], steps: list[Step], *, workers: int, desc: str,
              progress: bool = True, total_rows: int | None = None) -> Iterator[Chunk]:
    """Every chunk through every step; yields the finished chunks in no particular order."""
    chunks = list(chunks)
    with tqdm(total=total_rows if total_rows is not None else sum(c.rows for c in chunks), desc=desc,
              unit="row", unit_scale=False, disable=not progress, smoothing=0.1) as bar:
        finished = _local(chunks, steps) if workers == 0 else _on_ray(chunks, steps)
        for chunk in finished:
            bar.update(chunk.rows)
            yield chunk


def _local(chunks: list[Chunk], steps: list[Step]) -> Iterator[Chunk]:
    functions = [step.make() for step in steps]
    for chunk in chunks:
        payload = chunk.payload
        for function in functions:
            payload = function(payload)
        yield Chunk(chunk.key, chunk.rows, payload)


def _on_ray(chunks: list[Chunk], steps: list[Step]) -> Iterator[Chunk]:
    import ray.data

    if not chunks:
        return
    items = [{"key": c.key, "rows": c.rows, "payload": pickle.dumps(c.payload, protocol=5)} for c in chunks]
    data = ray.data.from_items(items, override_num_blocks=len(items))
    # every step can hold its whole pool at once, whatever the others hold (an actor keeps its
    # CPU while it lives: steps asking for a whole CPU each would starve one another on a small
    # machine); a busy step's worker then shares its core with the next step's
    share = 1.0 / len(steps)
    for step in steps:
        if step.holds_model:
            data = data.map_batches(
                _ActorStep, fn_constructor_args=(step.make,), batch_size=1, batch_format="pyarrow",
                compute=ray.data.ActorPoolStrategy(min_size=1, max_size=step.workers, initial_size=step.workers),
                num_cpus=step.num_cpus * share, num_gpus=step.num_gpus or None, zero_copy_batch=True,
                udf_modifying_row_count=False, max_restarts=RETRIES, max_task_retries=RETRIES, **step.extra)
        else:
            data = data.map_batches(
                _task_step, fn_kwargs={"make": step.make}, batch_size=1, batch_format="pyarrow",
                compute=ray.data.TaskPoolStrategy(size=step.workers), num_cpus=step.num_cpus * share,
                udf_modifying_row_count=False, max_retries=RETRIES, **step.extra)
    for row in data.iter_rows():
        yield Chunk(row["key"], row["rows"], pickle.loads(row["payload"]))


def _apply(function: Callable[[Any], Any], batch: pa.Table) -> pa.Table:
    payloads = [pickle.dumps(function(pickle.loads(p)), protocol=5) for p in batch.column("payload").to_pylist()]
    return batch.set_column(batch.schema.get_field_index("payload"), "payload", pa.array(payloads, pa.binary()))


def _task_step(batch: pa.Table, make: Callable[[], Callable[[Any], Any]]) -> pa.Table:
    return _apply(make(), batch)


class _ActorStep:
    """A stateful Ray Data worker: builds its step once (its models load on first use) and
    keeps it for every chunk it is handed."""

    def __init__(self, make: Callable[[], Callable[[Any], Any]]):
        self.function = make()

    def __call__(self, batch: pa.Table) -> pa.Table:
        return _apply(self.function, batch)
