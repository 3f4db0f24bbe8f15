"""Ingest's peak memory at two pool sizes (its throughput against plain decoding, through the
data plane, is ``ingest_vs_decode`` in benchmarks/scale_out.py).

    python benchmarks/ingest.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import OUT, result, run_benchmark, sample_pool  # noqa: E402

WORKERS = 2
BATCH = 64


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

    memory = {n: ingest_run(pools[n], OUT / f"ingest-data-{n}") for n in (small, large)}
    print(f"{WORKERS} workers")
    for n, run in memory.items():
        print(f"peak RSS at {n} images: main {run['rss_mb']:.0f} MB, largest worker {run['worker_rss_mb']:.0f} MB")
    growth = memory[large]["rss_mb"] / memory[small]["rss_mb"]
    result(f"ingest_peak_rss_growth_{small}_to_{large}", growth, "<=", 1.25)


if __name__ == "__main__":
    run_benchmark(main)
