"""The data plane on Ray Data: the auto-filter's throughput with 2 workers over 1, the driver's
peak memory at two pool sizes, the shards a killed run scores again when it is started once more,
and ingest's throughput against plain decoding.

- ``filter_scaling_2_workers``: rows/s of the default cascade (size, technical quality, NSFW,
  OCR, near-duplicates, concepts) with 2 Ray workers per step over 1 (a local Ray of 2 CPUs
  against one of 1, on the whole machine), on the same pools, in one run, in steady state: the
  marginal rate between a pool and one twice its size, (rows of the larger - rows of the
  smaller) / (seconds of the larger - seconds of the smaller), both in the same Ray session.
  What both runs pay once (the actors' start, their models' loading, filling and draining the
  pipeline) cancels in the difference; Ray's start-up is outside both. Not pinned to one core
  against two: Ray's own processes and the driver keep 0.4-0.5 of a core busy, which on one
  core leaves the worker half of it (2.6-3.1 "scaling" from 1 core to 2, measured);
- ``driver_peak_rss_growth_1k_to_4k``: the driver's peak RSS filtering 4,000 samples over
  1,000 (each in its own process; the model scorers off, which live in the workers anyway);
- ``resume_rework_shards``: a filter run SIGKILLed when half its input shards have their
  parts, then run again: the shards both runs started (at most the shards in flight);
- ``ingest_vs_decode``: ingest's images/s over plain decoding's, both through the same Ray Data
  path (the same reader on the driver, the same workers, chunks and windows), on the same pool,
  in one run, on one local Ray started (and warmed up) before either is timed: what ingest adds
  to decoding (hashing, the probe's checks, caption cleaning, deduplication, its parts, writing
  the image store), its Ray start-up and its manifest write at the end outside. The best of two
  interleaved repeats of each.

It also prints the cost model the README quotes: each scorer's measured cost per image on one
core here, the rows each scorer saw on the sample pool, and node-hours for 100M and 1B images
projected from those (and from the assumptions ``WEB_MIX`` and ``GPU_IMAGES_PER_SECOND`` state).

    python benchmarks/scale_out.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks._common import OUT, result, run_benchmark, sample_pool  # noqa: E402

WORKERS = 2
SHARD = 100  # ingested rows per shard: the unit of parts and of resume
BATCH = 64  # ingest's chunk of samples (ingest.batch_size's default)


def ingested(n: int) -> Path:
    """The ingested dataset of an n-sample pool, in shards of SHARD rows (made once, reused)."""
    from photogenic.config import load_config
    from photogenic.stages.ingest import ingest

    root = OUT / f"scale-out-{n}"
    config = load_config(None, [f"data.root={root}", f"ingest.sources.0.uri={sample_pool(n)}/*.tar",
                                f"ingest.shard_max_images={SHARD}"])
    ingest(config, progress=False)
    return root


def filter_config(root: Path, *overrides: str):
    from photogenic.config import load_config

    return load_config(REPO / "configs" / "default.yaml", [f"data.root={root}", *overrides])


def scaling(smaller: Path, larger: Path) -> tuple[float, float, list[tuple[str, int]]]:
    """Steady rows/s with 1 worker and with 2 on this machine: the marginal rate from the
    ``smaller`` pool to the ``larger`` one, both filtered in one local Ray of that many CPUs, its
    start-up outside the timing. Returns the two rates and the larger pool's funnel."""
    from photogenic.dataplane.session import ray_session
    from photogenic.dataset.store import Dataset
    from photogenic.filtering.cascade import run_cascade
    from photogenic.filtering.registry import build_scorers

    rates = []
    for workers in (1, WORKERS):
        runs = []
        with ray_session(cpus=workers):
            for root in (smaller, larger):
                scorers = build_scorers(filter_config(root))
                started = time.perf_counter()
                run = run_cascade(Dataset(str(root / "datasets" / "ingested")), scorers, workers=workers,
                                  batch_size=32, progress=False)
                runs.append((run.table.num_rows, time.perf_counter() - started))
        (rows_small, s_small), (rows_large, s_large) = runs
        rates.append((rows_large - rows_small) / (s_large - s_small))
        print(f"{workers} worker(s): {rows_small} rows in {s_small:.1f} s, {rows_large} rows in {s_large:.1f} s "
              f"(the actors' start and model loading included): {rates[-1]:.1f} rows/s in steady state; funnel "
              + " → ".join(f"{name} {count}" for name, count in run.funnel))
    return rates[0], rates[1], run.funnel


CHILD = """
import json, os, resource, sys, time
sys.path.insert(0, {repo!r})
from pathlib import Path
import photogenic.filtering.cascade as cascade
from benchmarks._scale_out_work import RecordingStep
cascade.CascadeStep = RecordingStep
from benchmarks.scale_out import filter_config
from photogenic.stages.auto_filter import auto_filter
config = filter_config(Path({root!r}), *{overrides!r})
started = time.perf_counter()
done = auto_filter(config, progress=False)
print(json.dumps({{"seconds": time.perf_counter() - started, "rows": done.funnel[0][1], "shards": done.shards,
                   "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def child(root: Path, overrides: list[str], started_log: Path | None = None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if started_log is not None:
        env["SCALE_OUT_STARTED"] = str(started_log)
    return subprocess.Popen([sys.executable, "-c", CHILD.format(repo=str(REPO), root=str(root), overrides=overrides)],
                            stdout=subprocess.PIPE, text=True, env=env, start_new_session=True)


def finish(process: subprocess.Popen) -> dict:
    out, _ = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"filter run failed ({process.returncode})")
    return json.loads(out.strip().splitlines()[-1])


def driver_rss(root: Path) -> dict:
    return finish(child(root, [f"filter.workers={WORKERS}", "filter.ocr.enabled=false", "filter.nsfw.enabled=false"]))


def resume_rework(root: Path) -> tuple[int, int, dict]:
    """Kill a run when half its shards have parts; run again; the shards both runs started."""
    from photogenic.stages.auto_filter import PARTS

    total = len({s for s in _shards(root)})
    first_log, second_log = root / "started-1.txt", root / "started-2.txt"
    for log in (first_log, second_log):
        log.unlink(missing_ok=True)
    overrides = [f"filter.workers={WORKERS}", "filter.ocr.enabled=false"]
    parts = root / "datasets" / "candidates" / PARTS
    first = child(root, overrides, first_log)
    while first.poll() is None and len(list(parts.glob("part-*.parquet"))) < total // 2:
        time.sleep(0.02)
    os.killpg(first.pid, signal.SIGKILL)  # the driver and the Ray it started
    first.wait()
    finished = len(list(parts.glob("part-*.parquet")))
    second = finish(child(root, overrides, second_log))
    started_first = set(first_log.read_text().split()) if first_log.exists() else set()
    started_second = set(second_log.read_text().split())
    print(f"resume: {total} shards; killed with {finished} parts written, {len(started_first)} shards started; "
          f"the second run scored {second['shards']['scored']} and reused {second['shards']['reused']}")
    return len(started_first & started_second), finished, second


def decode_rate(pool: Path, limit: int | None = None) -> float:
    """Images/s of reading the pool's shards on the driver and fully decoding every image on the
    data plane, nothing else: ingest's reader, workers, chunks and windows."""
    import itertools

    from benchmarks._scale_out_work import DecodeChunk
    from photogenic.config import SourceConfig
    from photogenic.dataplane.pipeline import Chunk, Step, run_ordered
    from photogenic.sources.readers import iter_source

    started = time.perf_counter()
    samples = itertools.islice(iter_source(SourceConfig(kind="webdataset", uri=f"{pool}/*.tar"), str(pool)), limit)
    chunks = (Chunk(batch[0].unit, len(batch), [s.image for s in batch]) for batch in _batched(samples, BATCH))
    step = Step(name="decode", make=DecodeChunk, workers=WORKERS)
    seen = sum(chunk.rows for chunk in run_ordered(chunks, [step], workers=WORKERS, desc="decode", progress=False))
    return seen / (time.perf_counter() - started)


def ingest_rate(pool: Path, data_root: Path) -> float:
    """Images/s of ingest (``IngestStats``: from its first read to its last shard, the manifest
    write after it outside) into a fresh data root, on the Ray already running."""
    import shutil

    from photogenic.config import load_config
    from photogenic.stages.ingest import ingest

    shutil.rmtree(data_root, ignore_errors=True)
    config = load_config(None, [f"data.root={data_root}", f"ingest.sources.0.uri={pool}/*.tar",
                                f"ingest.workers={WORKERS}", f"ingest.batch_size={BATCH}"])
    stats = ingest(config, progress=False).stats
    return stats.seen / stats.seconds


def ingest_vs_decode(pool: Path) -> tuple[float, float]:
    """The best of two interleaved repeats of each, on one local Ray of WORKERS CPUs, started and
    warmed up (its workers up, Pillow imported in them) before the first timing."""
    from photogenic.dataplane.session import ray_session

    decode_rates, ingest_rates = [], []
    with ray_session(cpus=WORKERS):
        decode_rate(pool, limit=4 * WORKERS * BATCH)
        for _ in range(2):
            decode_rates.append(decode_rate(pool))
            ingest_rates.append(ingest_rate(pool, OUT / "scale-out-ingest"))
    print(f"ingest vs decode, {WORKERS} Ray workers, {sum(1 for _ in pool.glob('*.tar'))} shards: decode-only "
          + ", ".join(f"{r:.0f}" for r in decode_rates) + " img/s; ingest " + ", ".join(f"{r:.0f}" for r in ingest_rates)
          + " img/s")
    return max(decode_rates), max(ingest_rates)


def _batched(items, size: int):
    import itertools

    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def _shards(root: Path) -> list[str]:
    from photogenic.dataset.store import Dataset

    return Dataset(str(root / "datasets" / "ingested")).read_manifest(columns=["shard"]).column("shard").to_pylist()


#: ASSUMED share of a web-scraped pool (LAION-like) alive after each cheap scorer: most web
#: images are small, off-aspect or low quality (Emu kept a few thousand of billions)
WEB_MIX = {"size": 0.45, "metadata": 0.45, "technical": 0.25, "nsfw": 0.24, "ocr": 0.2}
#: ASSUMED model throughput on one GPU (NeMo Curator's nightly benchmark: 900 img/s for decode ->
#: CLIP ViT-L/14 -> aesthetic/NSFW on one 8-GPU node), and the cores a GPU node has
GPU_IMAGES_PER_SECOND, GPUS_PER_NODE, CORES_PER_CPU_NODE = 110.0, 8, 32


def cost_model(root: Path, funnel: list[tuple[str, int]]) -> None:
    """Measured ms/image per scorer here, the rows each saw, and projected node-hours."""
    from benchmarks.filter_speed import scorer_costs
    from photogenic.dataset.store import Dataset
    from photogenic.filtering.cascade import per_row_order
    from photogenic.filtering.registry import build_scorers
    from photogenic.filtering.scorer import GlobalScorer

    dataset = Dataset(str(root / "datasets" / "ingested"))
    scorers = per_row_order(build_scorers(filter_config(root)))
    costs = scorer_costs(dataset, scorers)
    rows = dataset.read_manifest().slice(0, 24).to_pylist()
    started = time.perf_counter()
    for row in rows:
        dataset.load_image(row)
    costs["decode"] = 1000 * (time.perf_counter() - started) / len(rows)
    # the share of the pool each scorer sees: the rows no per-row scorer before it rejected (the
    # pool-wide decisions reject only after every row was scored)
    total = funnel[0][1]
    rejected = {name: before - after for (_, before), (name, after) in zip(funnel, funnel[1:])}
    seen, gone = {}, 0
    for scorer in scorers:
        seen[scorer.name] = (total - gone) / total
        if not isinstance(scorer, GlobalScorer):
            gone += rejected.get(scorer.name, 0)
    print("cost model (ms/image on one core, measured here; share of the pool each scorer sees, "
          "measured on the sample pool | assumed on a web-like mix):")
    web, share = {}, 1.0
    for scorer in scorers:
        web[scorer.name] = share
        share = WEB_MIX.get(scorer.name, share)
    for scorer in scorers:
        print(f"  {scorer.name:18s} {costs.get(scorer.name, 0.0):7.2f} ms  sees {seen[scorer.name]:6.1%} | "
              f"{web[scorer.name]:6.1%}{'  (model)' if scorer.holds_model else ''}")
    print(f"  {'decode':18s} {costs['decode']:7.2f} ms  sees the rows the first pixel scorer sees")
    first_pixel = next(s.name for s in scorers if s.needs_pixels)
    for label, reach in (("sample pool", seen), ("web-like mix", web)):
        cpu_ms = reach[first_pixel] * costs["decode"] + sum(reach[s.name] * costs.get(s.name, 0.0) for s in scorers)
        cheap_ms = reach[first_pixel] * costs["decode"] + sum(reach[s.name] * costs.get(s.name, 0.0)
                                                              for s in scorers if not s.holds_model)
        model_share = max((reach[s.name] for s in scorers if s.holds_model), default=0.0)
        for n in (100e6, 1e9):
            cpu_hours = n * cpu_ms / 1000 / 3600 / CORES_PER_CPU_NODE
            # GPU nodes: the models on the GPUs, the rest on the node's cores
            gpu_hours = max(n * model_share / (GPU_IMAGES_PER_SECOND * GPUS_PER_NODE),
                            n * cheap_ms / 1000 / CORES_PER_CPU_NODE) / 3600
            print(f"  {label}, {n:.0e} images: {cpu_ms:.1f} ms/image on one core -> {cpu_hours:,.0f} node-hours "
                  f"on {CORES_PER_CPU_NODE}-core CPU nodes; {gpu_hours:,.0f} on {GPUS_PER_NODE}-GPU nodes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smaller pools: 3-4 minutes on 2 cores once its pools exist")
    parser.add_argument("--ingest-only", action="store_true", help="ingest_vs_decode alone")
    args = parser.parse_args()
    pool = 1000 if args.quick else 4000
    if args.ingest_only:
        decoded, ingested_rate = ingest_vs_decode(sample_pool(pool))
        result("ingest_vs_decode", ingested_rate / decoded, ">=", 0.7)
        return

    small, large = (250, 1000) if args.quick else (1000, 4000)
    scaling_pool = 300 if args.quick else 1000
    larger = ingested(2 * scaling_pool)
    one, two, funnel = scaling(ingested(scaling_pool), larger)
    cost_model(larger, funnel)
    low, high = ingested(small), ingested(large)
    rss_small, rss_large = driver_rss(low), driver_rss(high)
    print(f"driver peak RSS: {small} samples {rss_small['rss_mb']:.0f} MB ({rss_small['seconds']:.1f} s), "
          f"{large} samples {rss_large['rss_mb']:.0f} MB ({rss_large['seconds']:.1f} s)")
    rework, _, _ = resume_rework(high if not args.quick else low)
    decoded, ingested_rate = ingest_vs_decode(sample_pool(pool))
    result("filter_scaling_2_workers", two / one, ">=", 1.7)
    result("driver_peak_rss_growth_1k_to_4k", rss_large["rss_mb"] / rss_small["rss_mb"], "<=", 1.2)
    result("resume_rework_shards", rework, "<=", WORKERS)
    result("ingest_vs_decode", ingested_rate / decoded, ">=", 0.7)


if __name__ == "__main__":
    run_benchmark(main)
