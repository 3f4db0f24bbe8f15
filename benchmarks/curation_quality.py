"""The curated set against the sample pool's hidden ground truth, SIMULATED annotators included.

Runs the data part of the demo (ingest → auto-filter → curation with simulated annotators →
caption) on a sample pool with the default config, timing each stage, and prints the curated
set's precision (the share of curated images whose scene the truth calls photogenic; a
near-duplicate stands for its original's scene, as in filter_quality.py), the same for stage 1's
selection, the agreement, and where the training captions came from.

    python benchmarks/curation_quality.py [--quick]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import OUT, result, run_benchmark, sample_pool  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 1,000-image pool instead of 4,000")
    args = parser.parse_args()

    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from photogenic.config import load_config
    from photogenic.curation.layout import CurationLayout
    from photogenic.dataset.store import Dataset
    from photogenic.stages.runner import check_output, run_stage

    n = 1000 if args.quick else 4000
    pool = sample_pool(n)
    root = OUT / f"curation-quality-{n}"
    shutil.rmtree(root, ignore_errors=True)
    overrides = [f"data.root={root}", f"ingest.sources.0.uri={pool}/*.tar",
                 f"curation.simulate.ground_truth={pool / 'ground_truth.parquet'}"]
    if args.quick:  # the quotas scaled like the pool
        overrides += ["curation.stage1.quota=150", "curation.stage2.quota=50"]
    config = load_config(Path(__file__).resolve().parents[1] / "configs" / "default.yaml", overrides)

    seconds = {}
    outputs = {}
    for stage in ("ingest", "auto_filter", "curation", "caption"):
        start = time.perf_counter()
        outputs[stage] = run_stage(stage, config, progress=False)
        check_output(stage, outputs[stage].ref, config)
        seconds[stage] = time.perf_counter() - start

    truth = {r["key"]: r for r in pq.read_table(pool / "ground_truth.parquet").to_pylist()}
    scene = {key: row["near_duplicate_of"] or key for key, row in truth.items()}
    photogenic = {key for key, row in truth.items() if row["photogenic"]}

    def precision(sources: list[str]) -> float:
        keys = [s.rsplit("#", 1)[1] for s in sources]
        return sum(scene[k] in photogenic for k in keys) / len(keys) if keys else 0.0

    candidates = Dataset(outputs["auto_filter"].ref.path).read_manifest(["sample_id", "source"])
    stage1 = pq.read_table(CurationLayout.of(config).result(1))
    stage1_ids = stage1.filter(pc.equal(stage1["selected"], True))["sample_id"]
    stage1_sources = candidates.filter(pc.is_in(candidates["sample_id"], value_set=stage1_ids))["source"].to_pylist()
    curated = Dataset(outputs["curation"].ref.path).read_manifest(["source"])["source"].to_pylist()
    stats = outputs["curation"].stats
    print(f"pool {n}: candidates {len(candidates)} (photogenic share {precision(candidates['source'].to_pylist()):.3f})"
          f" → stage 1 {len(stage1_sources)} (precision {precision(stage1_sources):.3f})"
          f" → curated {len(curated)} (precision {precision(curated):.3f})")
    print(f"verdict kappa: stage 1 {stats['stage1']['verdict_kappa']:.3f}, stage 2 {stats['stage2']['verdict_kappa']:.3f}"
          " (SIMULATED annotators)")
    print(f"training captions: {outputs['caption'].stats['caption_sources']}, "
          f"quarantined {outputs['caption'].stats['quarantined']}")
    print("seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in seconds.items()) + f", total {sum(seconds.values()):.1f}")
    result("curated_precision", precision(curated), ">=", 0.9)


if __name__ == "__main__":
    run_benchmark(main)
