"""Helpers shared by the benchmarks: the RESULT line convention, the cached sample pool and its
ingested dataset."""

from __future__ import annotations

import operator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = Path(__file__).resolve().parent / "out"
_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}


def run_benchmark(main) -> None:
    """Run a benchmark's ``main`` and leave once it has printed its RESULT lines, without the
    interpreter's teardown, where pyarrow's thread pool now and then aborts (see
    photogenic.exiting) and would fail ``make bench`` after the benchmark had finished."""
    from photogenic.exiting import exit_now

    main()
    exit_now(0)


def result(metric: str, value: float, op: str, target: float) -> str:
    """Print and return ``RESULT metric=value target<op><target> PASS|MISS``."""
    verdict = "PASS" if _OPS[op](value, target) else "MISS"
    line = f"RESULT {metric}={value:.3f} target{op}{target} {verdict}"
    print(line, flush=True)
    return line


def data_root(config) -> Path:
    """The config's ``data.root`` as the project's commands see it: a relative one is under the
    project folder, whatever folder the benchmark was started from."""
    root = Path(config.data.root)
    return root if root.is_absolute() else REPO / root


def sample_pool(n: int, seed: int = 0) -> Path:
    """A sample pool of ``n`` images under benchmarks/out, generated once and reused."""
    from photogenic.samplepool import generate_sample_pool

    out = OUT / f"pool-{n}-{seed}"
    # overwrite: a pool left by an older generator version is regenerated, not an error
    generate_sample_pool(out, n=n, seed=seed, shard_size=1000, progress=False, overwrite=True)
    return out


def ingested_pool(n: int):
    """An ingested dataset of ``n`` sample-pool images under benchmarks/out (made once)."""
    from photogenic.config import load_config
    from photogenic.dataset.store import Dataset
    from photogenic.stages.ingest import ingest

    root = OUT / f"ingested-{n}"
    dataset = Dataset(str(root / "datasets" / "ingested"))
    if not dataset.exists():
        pool = sample_pool(n)
        cfg = load_config(None, [f"data.root={root}", f"ingest.sources.0.uri={pool}/*.tar", "ingest.workers=0"])
        ingest(cfg, progress=False)
    return dataset
