"""Entry point: generate the embedded synthetic pool into a local folder, or reuse it.

A stamp (``_generator.json``, written last) records the parameters a folder was generated with
and the size of every file. Asking again for the same pool returns at once; asking for a
different one in the same folder is an error unless ``overwrite=True``, and even then files the
generator did not write are never deleted.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from photogenic.dataset.atomic import TMP_MARK
from photogenic.samplepool.readme import readme_text
from photogenic.samplepool.sample import PoolContext, SampleRecord, build_sample
from photogenic.samplepool.spec import DEFECTS, SamplePoolError, SamplePoolSpec
from photogenic.samplepool.writer import (
    GROUND_TRUTH,
    README,
    STAMP,
    atomic_write,
    write_ground_truth,
    write_shard,
)

#: bump whenever a change to this package changes any byte of a generated pool
GENERATOR_VERSION = "4"

log = logging.getLogger(__name__)

_POOL_FILE = re.compile(
    rf"\d{{5,}}(\.tar|\.parquet|_stats\.json)|{re.escape(GROUND_TRUTH)}|{re.escape(README)}"
    rf"|{re.escape(STAMP)}|.+{re.escape(TMP_MARK)}[0-9a-f]+"
)


@dataclass(frozen=True)
class SamplePoolSummary:
    out: str
    n: int
    seed: int
    #: tar shard paths, in order
    shards: list[str]
    #: samples that are photogenic by construction
    photogenic: int
    #: samples per defect, every defect listed (canonical order)
    defects: dict[str, int]
    seconds: float
    #: True when the folder already held this exact pool and nothing was written
    reused: bool


def generate_sample_pool(
    out: str | os.PathLike,
    n: int = 4000,
    seed: int = 0,
    shard_size: int = 1000,
    workers: int | None = None,
    progress: bool = True,
    spec: SamplePoolSpec | None = None,
    overwrite: bool = False,
) -> SamplePoolSummary:
    """Write ``n`` synthetic image-caption samples as img2dataset WebDataset shards in ``out``.

    The same (n, seed, shard_size, spec) gives byte-identical files whatever ``workers`` is.
    """
    start = time.perf_counter()
    _validate(n, seed, shard_size, workers)
    spec = spec or SamplePoolSpec()
    folder = Path(out)
    identity = _identity(n, seed, shard_size, spec)
    stamp = _matching_stamp(folder, identity)
    if stamp is not None:
        log.info("sample pool: %s already holds this pool (n=%d, seed=%d); reusing it", folder, n, seed)
        return _summary(folder, stamp, time.perf_counter() - start, reused=True)

    _prepare_folder(folder, identity, overwrite)
    context = PoolContext.create(n, seed, shard_size, spec)
    workers = min(workers or min(2, os.cpu_count() or 1), n)
    truth = _write_shards(folder, context, workers, progress)

    defect_counts = _defect_counts(truth)
    atomic_write(folder / README, readme_text(
        n=n, seed=seed, shard_size=shard_size, version=GENERATOR_VERSION, spec=spec, truth=truth,
        defect_counts=defect_counts).encode("utf-8"))
    write_ground_truth(folder, truth)
    stamp = {
        **identity,
        "photogenic": sum(row["photogenic"] for row in truth),
        "defects": defect_counts,
        "files": _file_sizes(folder),
    }
    atomic_write(folder / STAMP, (json.dumps(stamp, indent=2) + "\n").encode("utf-8"))
    summary = _summary(folder, stamp, time.perf_counter() - start, reused=False)
    log.info("sample pool: %d samples in %d shards, %d photogenic, written to %s in %.1f s",
             n, len(summary.shards), summary.photogenic, folder, summary.seconds)
    return summary


def _validate(n: int, seed: int, shard_size: int, workers: int | None) -> None:
    for name, value, minimum in (("n", n, 1), ("seed", seed, 0), ("shard_size", shard_size, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise SamplePoolError(f"generate_sample_pool: {name} must be an integer >= {minimum}, got {value!r}.")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise SamplePoolError(f"generate_sample_pool: workers must be an integer >= 1 or None, got {workers!r}.")


def _identity(n: int, seed: int, shard_size: int, spec: SamplePoolSpec) -> dict[str, Any]:
    """What decides every byte of a pool (``workers`` and ``progress`` do not)."""
    return {"generator": "photogenic.samplepool", "version": GENERATOR_VERSION, "n": n, "seed": seed,
            "shard_size": shard_size, "spec": spec.as_dict()}


def _read_stamp(folder: Path) -> dict[str, Any] | None:
    try:
        stamp = json.loads((folder / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return stamp if isinstance(stamp, dict) else None


def _matching_stamp(folder: Path, identity: dict[str, Any]) -> dict[str, Any] | None:
    """The stamp, if the folder holds exactly the requested pool with every file intact in size."""
    stamp = _read_stamp(folder)
    if stamp is None or any(stamp.get(k) != v for k, v in identity.items()):
        return None
    files = stamp.get("files")
    if not isinstance(files, dict) or _file_sizes(folder, exclude_stamp=True) != files:
        return None
    return stamp


def _prepare_folder(folder: Path, identity: dict[str, Any], overwrite: bool) -> None:
    if folder.exists() and not folder.is_dir():
        raise SamplePoolError(f"The sample pool folder {folder} exists and is not a folder.")
    folder.mkdir(parents=True, exist_ok=True)
    entries = sorted(folder.iterdir())
    if not entries:
        return
    if not overwrite:
        raise SamplePoolError(
            f"{folder} already holds {_describe(folder)}, not the requested pool (n={identity['n']}, "
            f"seed={identity['seed']}, shard_size={identity['shard_size']}, generator version "
            f"{identity['version']}). Pass overwrite=True (--overwrite) to replace it, or choose another folder."
        )
    foreign = [e.name for e in entries if not (e.is_file() and _POOL_FILE.fullmatch(e.name))]
    if foreign:
        raise SamplePoolError(
            f"{folder} holds entries the sample pool generator did not write ({', '.join(foreign[:5])}"
            f"{', ...' if len(foreign) > 5 else ''}); they are not deleted, even with overwrite=True. "
            "Choose an empty folder."
        )
    for entry in entries:
        entry.unlink()


def _describe(folder: Path) -> str:
    stamp = _read_stamp(folder)
    if stamp is None:
        return "files without a complete sample pool stamp (another pool, an interrupted run, or other data)"
    return (f"a sample pool generated with n={stamp.get('n')}, seed={stamp.get('seed')}, "
            f"shard_size={stamp.get('shard_size')}, generator version {stamp.get('version')}"
            f"{'' if stamp.get('spec') == SamplePoolSpec().as_dict() else ' and a custom spec'}")


def _write_shards(folder: Path, ctx: PoolContext, workers: int, progress: bool) -> list[dict[str, Any]]:
    """Build samples in order and write each shard as soon as its last sample arrives."""
    truth: list[dict[str, Any]] = []
    shard: list[SampleRecord] = []
    with tqdm(total=ctx.n, desc="sample pool", unit="img", disable=not progress) as bar:
        for index, record in enumerate(_records(ctx, workers)):
            shard.append(record)
            truth.append(record.truth)
            if index == ctx.n - 1 or ctx.shard_of(index + 1) != ctx.shard_of(index):
                write_shard(folder, ctx.shard_of(index), shard)
                shard = []
            bar.update()
    return truth


def _records(ctx: PoolContext, workers: int) -> Iterator[SampleRecord]:
    """Samples in index order; with several workers, from a spawn pool (safe on every OS and
    inside threaded hosts) that receives the context once and returns results in order."""
    if workers == 1:
        yield from (build_sample(ctx, i) for i in range(ctx.n))
        return
    chunksize = max(1, min(32, ctx.n // (workers * 8)))
    with multiprocessing.get_context("spawn").Pool(workers, initializer=_init_worker, initargs=(ctx,)) as pool:
        yield from pool.imap(_build_in_worker, range(ctx.n), chunksize=chunksize)


_worker_context: PoolContext | None = None


def _init_worker(ctx: PoolContext) -> None:
    global _worker_context
    _worker_context = ctx


def _build_in_worker(index: int) -> SampleRecord:
    return build_sample(_worker_context, index)


def _defect_counts(truth: list[dict[str, Any]]) -> dict[str, int]:
    counts = Counter(d for row in truth for d in row["defects"])
    return {d: counts[d] for d in DEFECTS}


def _file_sizes(folder: Path, exclude_stamp: bool = False) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in sorted(folder.iterdir())
            if p.is_file() and not (exclude_stamp and p.name == STAMP)}


def _summary(folder: Path, stamp: dict[str, Any], seconds: float, reused: bool) -> SamplePoolSummary:
    shards = sorted(str(folder / name) for name in stamp["files"] if name.endswith(".tar"))
    return SamplePoolSummary(
        out=str(folder), n=stamp["n"], seed=stamp["seed"], shards=shards, photogenic=stamp["photogenic"],
        defects=dict(stamp["defects"]), seconds=seconds, reused=reused,
    )
