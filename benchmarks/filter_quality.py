"""The auto-filter's decisions against the sample pool's hidden ground truth, and on real
photographs.

Runs ingest and the auto-filter with the default config on a sample pool and prints the recall
of photogenic samples (how many of them survive to the candidate pool) and the precision lift
(the photogenic share of the candidates over the pool's base rate), plus the funnel. Then the
same on the real-photograph test set (tests/support/real_photos.py: 8 stock photographs and 32
copies with planted defects): the share of clean photographs kept and of defective copies
rejected. And the thresholds `photogenic filter calibrate` fits from SIMULATED stage-1
verdicts on a random sample of the ingested pool, run again: they must reach the same recall
target and at least the defaults' precision lift, measured in the same run.

    python benchmarks/filter_quality.py [--quick]
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

    import pyarrow.parquet as pq

    from photogenic.config import load_config
    from photogenic.stages.auto_filter import auto_filter
    from photogenic.stages.ingest import ingest

    n = 1000 if args.quick else 4000
    pool = sample_pool(n)
    root = OUT / f"filter-quality-{n}"
    shutil.rmtree(root, ignore_errors=True)
    config = load_config(Path(__file__).resolve().parents[1] / "configs" / "default.yaml",
                         [f"data.root={root}", f"ingest.sources.0.uri={pool}/*.tar",
                          f"curation.simulate.ground_truth={pool}/ground_truth.parquet",
                          "filter.calibrate.mlflow=false"])  # a measurement, not a run to track
    ingest(config, progress=False)
    started = time.perf_counter()
    filtered = auto_filter(config, progress=False)
    seconds = time.perf_counter() - started

    truth = {r["key"]: r for r in pq.read_table(pool / "ground_truth.parquet").to_pylist()}
    recall, lift = judge(filtered, truth, n, seconds, config)

    # the same filter with thresholds fitted from SIMULATED stage-1 verdicts on a random sample
    # of the ingested pool (labels of the candidates alone would only ever tighten them)
    labelled = 400 if args.quick else 1000
    fitted = calibrated(config, labelled)
    print(f"calibrated on {labelled} simulated stage-1 verdicts: " + ", ".join(f"{k}={v}" for k, v in fitted.items()))
    config_fitted = load_config(Path(__file__).resolve().parents[1] / "configs" / "default.yaml",
                                [f"data.root={root}", f"ingest.sources.0.uri={pool}/*.tar", "filter.output=candidates-fitted",
                                 f"curation.simulate.ground_truth={pool}/ground_truth.parquet",
                                 *(f"{k}={v}" for k, v in fitted.items())])
    started = time.perf_counter()
    refiltered = auto_filter(config_fitted, progress=False)
    fitted_recall, fitted_lift = judge(refiltered, truth, n, time.perf_counter() - started, config_fitted)

    clean_kept, defects_rejected = real_photographs()
    result("photogenic_recall", recall, ">=", 0.9)
    result("precision_lift", lift, ">=", 2.0)
    result("calibrated_photogenic_recall", fitted_recall, ">=", 0.9)
    # "reproduce or beat today's defaults": the fitted thresholds' lift against the defaults'
    result("calibrated_precision_lift", fitted_lift, ">=", round(lift, 3))
    result("real_clean_kept", clean_kept, ">=", 0.9)
    result("real_defects_rejected", defects_rejected, ">=", 0.95)


def judge(filtered, truth: dict, n: int, seconds: float, config) -> tuple[float, float]:
    """Print the funnel and the candidates against the ground truth; (recall, precision lift)."""
    from photogenic.dataset.store import Dataset

    kept = [row["source"].rsplit("#", 1)[1] for row in Dataset(filtered.ref.path).read_manifest(["source"]).to_pylist()]
    # a copy (near or exact duplicate) stands for its original's scene: the filter keeps one
    # member of each duplicate cluster, and which one is its choice, so recall and precision are
    # counted per scene, not per file
    scene = {key: row["near_duplicate_of"] or key for key, row in truth.items()}
    photogenic_scenes = {key for key, row in truth.items() if row["photogenic"]}
    kept_scenes = {scene[key] for key in kept}
    hits = len(photogenic_scenes & kept_scenes)
    base_rate = len(photogenic_scenes) / len(set(scene.values()))
    precision = hits / len(kept_scenes) if kept_scenes else 0.0
    print(f"pool: {n} samples, {len(set(scene.values()))} scenes, {len(photogenic_scenes)} photogenic "
          f"(base rate {base_rate:.3f})")
    print(f"auto-filter ({config.filter.output}): {filtered.funnel[0][1]} rows in {seconds:.0f} s "
          f"({config.filter.workers} workers; the demo's data part spends this much in the filter)")
    print("funnel: " + " → ".join(f"{name} {count}" for name, count in filtered.funnel))
    print(f"candidates: {len(kept)} ({len(kept_scenes)} scenes), photogenic among them: {hits} "
          f"(precision {precision:.3f})")
    print("rejections by scorer: " + ", ".join(f"{k} {v}" for k, v in sorted(filtered.reasons.items())))
    return hits / len(photogenic_scenes), precision / base_rate


def calibrated(config, labelled: int) -> dict[str, float]:
    """Fit the thresholds from SIMULATED stage-1 verdicts on ``labelled`` rows of the ingested
    pool drawn at random (``photogenic filter sample --simulate``); the fitted overrides."""
    from photogenic.filtering.calibrate import calibrate, sample_for_labels

    sample_for_labels(config, labelled, simulate=True, progress=False)
    fit = calibrate(config, progress=False)
    print(f"calibration: held out {fit.held_out} of {fit.labels}: recall {fit.recall:.3f}, precision "
          f"{fit.precision:.3f} (default thresholds {fit.configured_recall:.3f}, {fit.configured_precision:.3f}); "
          f"{fit.files['fragment']}")
    return fit.overrides()


def real_photographs() -> tuple[float, float]:
    """The default filter on the real-photograph test set: (clean kept, defective rejected)."""
    from tests.support.real_photos import filter_real_photos, real_photo_set, shares

    root = OUT / "filter-quality-real-photos"
    shutil.rmtree(root, ignore_errors=True)
    verdicts = filter_real_photos(root, real_photo_set())
    clean_kept, defects_rejected = shares(verdicts)
    print(f"real photographs: {sum(v.photo.defect is None for v in verdicts)} clean, "
          f"{sum(v.photo.defect is not None for v in verdicts)} with a planted defect")
    for verdict in verdicts:
        if (verdict.rejected_by is None) != (verdict.photo.defect is None):
            print(f"  wrong: {verdict.photo.name}: {verdict.reason or 'kept'}")
    return clean_kept, defects_rejected


if __name__ == "__main__":
    run_benchmark(main)
