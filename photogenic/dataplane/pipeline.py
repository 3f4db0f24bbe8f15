"""A stage's per-row work as a Ray Data pipeline of steps over chunks of rows.

A chunk is a few dozen rows of one input shard (its ``key``), carried as one pickled payload, so
every step sees whole chunks whatever Ray does with blocks, and the driver can tell when a
shard is complete. A step is a function of a payload returning the next payload:

- a cheap step runs as Ray tasks (``map_batches`` with a function, at most ``workers`` at once);
- a step that holds a model runs in stateful actors (``map_batches`` with a callable class, an
  actor pool of 1 to ``workers``, ``num_gpus`` each): the model loads once per actor. A step
  whose output must be what one process would make (``Step.caller_threads``: evaluation
  sampling, the diffusion upscaler, the captioning model) runs torch there on as many intra-op
  threads as the driver: Ray starts a worker of one CPU with OMP_NUM_THREADS=1, and torch's CPU
  kernels split their sums by thread, so on another count a model's floats round otherwise (a
  tiny diffusion upscaler made other PNG bytes in an actor than in one process).

``run_steps`` takes every chunk at once and yields them as they finish (the auto-filter, whose
chunks are rows of a manifest); ``run_ordered`` reads a stream of chunks window by window and
yields them in input order; ``map_rows`` is a step over a stream of rows, results in input
order, in the stage's Ray (ingest's decoding, upsampling, packaging, captioning, the scores
that calibrate the filter).

A worker that dies (OOM, SIGKILL) costs a retry of the chunk it held, up to ``RETRIES`` times:
an actor is restarted, a task re-run; a chunk that kills its worker every time fails the stage
instead of hanging it (``run_ordered`` can instead retry a lost chunk row by row and give the
row that kills its worker every time a verdict of the caller's). With ``workers=0`` the steps
run here, in order, without Ray (tests, and machines where a Ray would cost more than the work).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import pickle
import sys
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pyarrow as pa
from tqdm.auto import tqdm

from photogenic.dataplane.session import model_gpus, ray_session
from photogenic.errors import WorkerDied

T = TypeVar("T")

#: how often a chunk is retried after its worker died
RETRIES = 3
#: tries a row gets alone, after the chunk it was in lost its worker, before it counts as the
#: row that kills its worker
ITEM_TRIES = 2


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
    #: a model step's actors run torch on the driver's intra-op thread count (see the module
    #: docstring), not on Ray's one per CPU
    caller_threads: bool = False
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
    if not chunks:
        return
    for row in _planned(chunks, steps, RETRIES).iter_rows():
        yield Chunk(row["key"], row["rows"], pickle.loads(row["payload"]))


def _planned(chunks: list[Chunk], steps: list[Step], retries: int, lost_ok: bool = False):
    """The Ray Data plan of ``chunks`` through ``steps`` (each chunk's position in ``seq``); a
    chunk whose worker died is tried ``retries`` more times, then fails the stage, or, with
    ``lost_ok``, is missing from the output (the caller sees which; an exception of a step's
    own then comes back as its payload, so that only a lost worker loses a chunk)."""
    import ray.data

    context = ray.data.DataContext.get_current()
    errored = context.max_errored_blocks
    context.max_errored_blocks = -1 if lost_ok else errored  # sealed into the plan when it is made
    try:
        items = [{"seq": i, "key": c.key, "rows": c.rows, "payload": pickle.dumps(c.payload, protocol=5)}
                 for i, c in enumerate(chunks)]
        data = ray.data.from_items(items, override_num_blocks=len(items))
        # every step can hold its whole pool at once, whatever the others hold (an actor keeps its
        # CPU while it lives: steps asking for a whole CPU each would starve one another on a small
        # machine); a busy step's worker then shares its core with the next step's
        share = 1.0 / len(steps)
        for step in steps:
            if step.holds_model:
                data = data.map_batches(
                    _ActorStep,
                    fn_constructor_args=(step.make, lost_ok, _torch_threads() if step.caller_threads else None),
                    batch_size=1, batch_format="pyarrow",
                    compute=ray.data.ActorPoolStrategy(min_size=1, max_size=step.workers, initial_size=step.workers),
                    num_cpus=step.num_cpus * share, num_gpus=step.num_gpus or None, zero_copy_batch=True,
                    udf_modifying_row_count=False, max_restarts=retries, max_task_retries=retries, **step.extra)
            else:
                data = data.map_batches(
                    _task_step, fn_kwargs={"make": step.make, "report": lost_ok}, batch_size=1, batch_format="pyarrow",
                    compute=ray.data.TaskPoolStrategy(size=step.workers), num_cpus=step.num_cpus * share,
                    udf_modifying_row_count=False, max_retries=retries, **step.extra)
        return data
    finally:
        context.max_errored_blocks = errored


def run_ordered(chunks: Iterable[Chunk], steps: list[Step], *, workers: int, desc: str, progress: bool = True,
                window: int | None = None, split: Callable[[Chunk], list[Chunk]] | None = None,
                died: Callable[[Chunk, str], Chunk] | None = None, total: int | None = None) -> Iterator[Chunk]:
    """Every chunk through every step, yielded in input order, ``chunks`` read as the work
    goes: ``window`` chunks (default: 4 per worker) make one Ray Data run, two runs are in flight
    while the next window is read, so memory holds about three windows, however long the stream.

    A worker that dies under a chunk (OOM, SIGKILL) costs a retry of the chunk, row by row:
    ``split`` cuts it into chunks of one row, each tried alone ``ITEM_TRIES`` times; a row that
    kills its worker every time is the culprit and gets ``died(chunk, message)`` (without it the
    stage fails with ``WorkerDied`` naming the row); one that survives a try was the victim of
    something else, and its result is used. A lost chunk yields its rows' chunks, one by one."""
    with tqdm(desc=desc, total=total, unit="row", unit_scale=False, disable=not progress, smoothing=0.1) as bar:
        if workers == 0:
            functions = [step.make() for step in steps]
            for chunk in chunks:
                payload = chunk.payload
                for function in functions:
                    payload = function(payload)
                bar.update(chunk.rows)
                yield Chunk(chunk.key, chunk.rows, payload)
            return
        # a lost chunk is retried row by row when it can be split, else as a whole
        retries = 0 if split is not None else RETRIES
        with ThreadPoolExecutor(2, thread_name_prefix="dataplane-window") as runs:
            inflight: deque[tuple[list[Chunk], Future]] = deque()
            for window_chunks in _batched(chunks, window or 4 * workers):
                # planned here (the plan seals the global DataContext), run in the background
                plan = _planned(window_chunks, steps, retries, lost_ok=True)
                inflight.append((window_chunks, runs.submit(_collect, plan)))
                if len(inflight) >= 2:
                    for chunk in _in_order(*inflight.popleft(), steps, split, died):
                        bar.update(chunk.rows)
                        yield chunk
            while inflight:
                for chunk in _in_order(*inflight.popleft(), steps, split, died):
                    bar.update(chunk.rows)
                    yield chunk


def map_rows(items: Iterable[T], to_arg: Callable[[T], Any], step: Step, *, key: Callable[[T], str],
             batch_size: int, desc: str, progress: bool = True, total: int | None = None,
             on_death: Callable[[T, str], Any] | None = None) -> Iterator[tuple[T, Any]]:
    """``step`` over ``items``, yielded in input order as ``(item, result)``. The step is a
    function of a list of ``to_arg(item)`` returning one result for each; it runs on chunks of
    at most ``batch_size`` consecutive items of one input shard (``key``; its name shows in
    errors), ``step.workers`` at once, in the stage's Ray (started only once there is an item;
    with ``step.workers`` 0, here, in order, without Ray). ``to_arg`` runs here, in input order,
    as the chunks are read; memory holds a few windows of them, however long the stream.

    A worker that dies under a chunk costs a retry. A cheap step (tasks) retries the chunk row
    by row: a row that kills its worker every time gets ``on_death(item, message)`` (without it
    the stage fails with WorkerDied naming the item). A model step (actors) retries the chunk
    whole, so that the model sees the same batches whatever happened, and a chunk that kills
    its worker every time fails the stage."""
    waiting: deque[T] = deque()  # read, sent, not yet back

    def chunks() -> Iterator[Chunk]:
        batch: list[Any] = []
        current = ""
        for item in items:
            unit = key(item)
            if batch and (len(batch) == batch_size or unit != current):
                yield Chunk(current, len(batch), batch)
                batch = []
            batch.append(to_arg(item))
            waiting.append(item)
            current = unit
        if batch:
            yield Chunk(current, len(batch), batch)

    stream = chunks()
    first = next(stream, None)
    if first is None:  # nothing to do: no Ray to start
        return
    with ray_session() if step.workers else contextlib.nullcontext():
        if step.workers and step.holds_model:
            step = dataclasses.replace(step, num_gpus=model_gpus(step.num_gpus))
        # closed before the session ends, whatever ends the loop (a WorkerDied, the caller's
        # error): the windows still in flight finish with the Ray they started on
        with contextlib.closing(run_ordered(
                itertools.chain([first], stream), [step], workers=step.workers, desc=desc, progress=progress,
                total=total, split=None if step.holds_model else one_by_one,
                died=lambda chunk, message: Chunk(chunk.key, 1, [_Died(message)]))) as finished:
            for chunk in finished:
                for result in chunk.payload:
                    item = waiting.popleft()
                    if isinstance(result, _Died):
                        if on_death is None:
                            raise WorkerDied(f"{result.message}: {item!r:.300} (in {chunk.key!r:.200}). Give "
                                             "the workers more memory, or remove it.")
                        result = on_death(item, result.message)
                    yield item, result


def one_by_one(chunk: Chunk) -> list[Chunk]:
    """A chunk whose payload is a list, as chunks of one item each."""
    return [Chunk(chunk.key, 1, [item]) for item in chunk.payload]


@dataclass(frozen=True)
class EachRow:
    """A step that applies ``function`` (importable by name, for the workers) to each item of
    its chunk."""

    function: Callable[[Any], Any]

    def __call__(self, items: list[Any]) -> list[Any]:
        return [self.function(item) for item in items]


@dataclass(frozen=True)
class _Died:
    """The result of a row that killed its worker every time (see ``map_rows``)."""

    message: str


def _collect(plan) -> dict[int, Chunk]:
    """Run a window's plan: its finished chunks by position."""
    finished = {}
    for row in plan.iter_rows():
        payload = pickle.loads(row["payload"])
        if isinstance(payload, _Raised):
            payload.reraise(row["key"])
        finished[row["seq"]] = Chunk(row["key"], row["rows"], payload)
    return finished


def _in_order(chunks: list[Chunk], run: Future, steps: list[Step], split, died) -> Iterator[Chunk]:
    finished = run.result()
    for seq, chunk in enumerate(chunks):
        if seq in finished:
            yield finished[seq]
            continue
        if split is None:
            raise WorkerDied(f"a worker died {RETRIES} times under a chunk of {chunk.key!r:.200}: give the "
                             "workers more memory")
        rows = split(chunk)
        # each row alone, with its tries: a row that survives one was not the culprit
        alone = _collect(_planned(rows, steps, ITEM_TRIES - 1, lost_ok=True))
        for row_seq, row in enumerate(rows):
            if row_seq in alone:
                yield alone[row_seq]
                continue
            message = (f"a worker died {ITEM_TRIES} times while processing this row alone (killed, e.g. by "
                       "the out-of-memory killer, or crashed in native code)")
            if died is None:
                raise WorkerDied(f"{message}: in {row.key!r:.200}. Give the workers more memory, or remove the row.")
            yield died(row, message)


def _batched(items: Iterable[Chunk], size: int) -> Iterator[list[Chunk]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


@dataclass(frozen=True)
class _Raised:
    """What a step raised, as its payload: the driver raises it (see ``_planned``), as itself
    where it pickles (a ConfigError stays one), its traceback in the worker as the cause."""

    traceback: str
    error: bytes | None = None

    @classmethod
    def now(cls) -> _Raised:
        try:
            error = pickle.dumps(sys.exc_info()[1], protocol=5)
        except Exception:  # noqa: BLE001 - an exception that does not pickle travels as text
            error = None
        return cls(traceback.format_exc(), error)

    def reraise(self, key: str) -> None:
        cause = RuntimeError(f"a step raised on a chunk of {key!r:.200}:\n{self.traceback}")
        error = None
        if self.error is not None:
            with contextlib.suppress(Exception):  # a class the driver cannot import: the text will do
                error = pickle.loads(self.error)
        if isinstance(error, Exception):
            raise error from cause
        raise cause


def _apply(function: Callable[[Any], Any], batch: pa.Table, report: bool = False) -> pa.Table:
    payloads = [pickle.dumps(_call(function, pickle.loads(p), report), protocol=5)
                for p in batch.column("payload").to_pylist()]
    return batch.set_column(batch.schema.get_field_index("payload"), "payload", pa.array(payloads, pa.binary()))


def _call(function: Callable[[Any], Any], payload: Any, report: bool) -> Any:
    if isinstance(payload, _Raised):
        return payload
    if not report:
        return function(payload)
    try:
        return function(payload)
    except Exception:  # noqa: BLE001 - handed to the driver, which raises it
        return _Raised.now()


def _task_step(batch: pa.Table, make: Callable[[], Callable[[Any], Any]], report: bool = False) -> pa.Table:
    return _apply(_built(make, report), batch, report)


def _built(make: Callable[[], Callable[[Any], Any]], report: bool) -> Callable[[Any], Any]:
    """The step ``make`` builds; with ``report``, one that fails to build (a checkpoint that
    does not load) answers every chunk with its error, which the driver raises."""
    if not report:
        return make()
    try:
        return make()
    except Exception:  # noqa: BLE001 - handed to the driver, which raises it
        failed = _Raised.now()
        return lambda payload: failed


def _torch_threads() -> int | None:
    """torch's intra-op threads in this process, where torch is installed (see the module
    docstring): what a model step would run on here."""
    try:
        import torch
    except ImportError:
        return None
    return torch.get_num_threads()


class _ActorStep:
    """A stateful Ray Data worker: builds its step once (its models load on first use) and
    keeps it for every chunk it is handed; torch runs on the driver's ``threads``."""

    def __init__(self, make: Callable[[], Callable[[Any], Any]], report: bool = False, threads: int | None = None):
        if threads:
            import torch

            torch.set_num_threads(threads)
        self.report = report
        self.function = _built(make, report)

    def __call__(self, batch: pa.Table) -> pa.Table:
        return _apply(self.function, batch, self.report)
