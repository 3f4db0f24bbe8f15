"""Emu's ablations: does quality-tuning on the curated set beat tuning on as many random rows?

Reads the last ``photogenic evaluate ablation`` (``<data.root>/datasets/ablation/results.json``
of ``configs/default.yaml``), or runs it first with ``--run`` (on the datasets and pretrained
model a ``make demo`` left), and prints each comparison's visual-appeal win rate, then the
targets: the curated arm beats the random arm at least 0.7 of the time (Emu: quality over
quantity), and beats the auto-filter candidates arm (human curation adds to the filter).

    python benchmarks/ablation.py [--quick] [--run] [--results FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks._common import data_root, result, run_benchmark  # noqa: E402

TARGETS = (("curated_vs_random_win_rate", "curated-vs-random", ">=", 0.7),
           ("curated_vs_candidates_win_rate", "curated-vs-candidates", ">", 0.5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="read the last ablation only (the default)")
    parser.add_argument("--run", action="store_true", help="run the ablation first (tens of minutes on 2 cores)")
    parser.add_argument("--results", type=Path, help="an ablation's results.json")
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "default.yaml")
    args = parser.parse_args()

    from photogenic.config import load_config
    from photogenic.evaluation.ablation import run_ablation, win_rate

    config = load_config(args.config)
    if args.run:
        summary = run_ablation(config)
    else:
        path = args.results or data_root(config) / "datasets" / "ablation" / "results.json"
        if not path.is_file():
            print(f"No ablation at {path}: run `photogenic evaluate ablation` after `make demo`, or pass --run.",
                  flush=True)
            for metric, _, op, target in TARGETS:
                result(metric, math.nan, op, target)
            return
        summary = json.loads(path.read_text())
    for c in summary["comparisons"]:
        row = c["headline"].get("visual_appeal", {})
        print(f"  {c['candidate']} vs {c['baseline']} (guidance {c['guidance_scale']:g}): visual appeal by "
              f"{row.get('judge')} {row.get('win_rate', math.nan):.3f} "
              f"[{row.get('ci_low', math.nan):.3f}, {row.get('ci_high', math.nan):.3f}]", flush=True)
    for metric, name, op, target in TARGETS:
        result(metric, win_rate(summary, name), op, target)


if __name__ == "__main__":
    run_benchmark(main)
