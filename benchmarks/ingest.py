"""Ingest throughput against decode-only throughput of the same shards (the ceiling), and
ingest's peak memory at two pool sizes.

Both throughputs use the same reader, the same number of worker processes and the same
batching, so the ratio isolates what ingest adds on top of decoding: hashing, the mode
conversion check, caption cleaning, deduplication, writing shards and the manifest.

    python benchmarks/ingest.py [--quick]
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import OUT, result, run_benchmark, sample_pool  # noqa: E402

WORKERS = 2
BATCH = 64


def decode_only(data: bytes | None) -> int:
    from PIL import Image

    if not data:
        return 0
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
        return 1
    except Exception:
        return 0


def decode_throughput(pool_dir: Path) -> float:
    """Images/s of reading the shards and fully decoding every image, nothing else, with the
    same reader, workers, batching and pipelining that ingest uses."""
    from photogenic.config import SourceConfig
    from photogenic.parallel import ordered_map
    from photogenic.sources.readers import iter_source

    source = SourceConfig(kind="webdataset", uri=str(pool_dir / "*.tar"))
    started = time.perf_counter()
    samples = iter_source(source, str(pool_dir))
    count = sum(1 for _ in ordered_map(decode_only, samples, lambda s: s.image, workers=WORKERS, batch_size=BATCH))
    return count / (time.perf_counter() - started)


def ingest_run(pool_dir: Path, data_root: Path) -> dict:
    """One ingest into a fresh data root, in a child process so its peak RSS is its own."""
    shutil.rmtree(data_root, ignore_errors=True)
    code = f"""
import json, resource, sys
from photogenic.config import load_config
from photogenic.stages.ingest import ingest
if __name__ == "__main__":
    config = load_config(None, ["data.root={data_root}", "ingest.sources.0.uri={pool_dir}/*.tar",
                                "ingest.workers={WORKERS}", "ingest.batch_size={BATCH}"])
    result = ingest(config, progress=False)
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({{"seen": result.stats.seen, "seconds": result.stats.seconds, "rows": result.ref.rows,
                      "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "worker_rss_mb": children / 1024}}))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller pools, under a minute")
    args = parser.parse_args()
    small, large = (500, 1000) if args.quick else (1000, 4000)
    pools = {n: sample_pool(n) for n in (small, large)}

    decode_rates, ingest_rates = [], []
    for _ in range(2):  # interleaved repeats; the best of each is the least disturbed
        decode_rates.append(decode_throughput(pools[large]))
        run = ingest_run(pools[large], OUT / "ingest-data")
        ingest_rates.append(run["seen"] / run["seconds"])
    memory = {n: ingest_run(pools[n], OUT / f"ingest-data-{n}") for n in (small, large)}

    decode_rate, ingest_rate = max(decode_rates), max(ingest_rates)
    print(f"pool: {large} images, {WORKERS} workers")
    print(f"decode-only: {decode_rate:.0f} img/s   ingest: {ingest_rate:.0f} img/s")
    for n, run in memory.items():
        print(f"peak RSS at {n} images: main {run['rss_mb']:.0f} MB, largest worker {run['worker_rss_mb']:.0f} MB")
    growth = memory[large]["rss_mb"] / memory[small]["rss_mb"]
    result("ingest_vs_decode", ingest_rate / decode_rate, ">=", 0.7)
    result(f"ingest_peak_rss_growth_{small}_to_{large}", growth, "<=", 1.25)


if __name__ == "__main__":
    run_benchmark(main)
