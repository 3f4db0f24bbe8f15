"""The quality-tuning recipe, tuned against the rater panel on prompts the evaluation never uses.

Every variant quality-tunes the pretrained model a ``make demo`` left on its training set, with
the demo's recipe changed only as the variant says, and is compared with the pretrained model
the way the evaluation compares (the same judges), but on a *tuning* prompt set: the held-out
stream of the sample world drawn with another seed (``world_prompts.tuning_prompts``), minus any
prompt of the evaluation's file, sampled with other seeds (``evaluate.sampling.seed`` + 1000). So
a recipe chosen here is not chosen on the prompts or seeds the headline is measured on.

The arms reuse the ablation's machinery (``photogenic.evaluation.ablation``): datasets and
models ``ablation-sweep-<variant>``, MLflow experiment ``photogenic-ablation``; the summary goes
to ``<data.root>/datasets/ablation-sweep.json``.

    python benchmarks/recipe_sweep.py --run [--variant NAME=key=value,key=value ...]
    python benchmarks/recipe_sweep.py [--quick]      # print the last sweep
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks._common import data_root, result, run_benchmark  # noqa: E402

#: name -> training.quality_tune overrides; "demo" is the recipe as configured
VARIANTS = {
    "demo": {},
    "steps-200": {"max_steps": 200},
    "steps-300": {"max_steps": 300},
    "lr-4e-4": {"learning_rate": 4e-4},
    "no-noise-offset": {"noise_offset": 0.0},
}
TUNING_SAMPLING_SEED_OFFSET = 1000


def _parse_variant(text: str) -> tuple[str, dict]:
    name, _, assignments = text.partition("=")
    overrides = {}
    for assignment in filter(None, assignments.split(",")):
        key, _, value = assignment.partition("=")
        overrides[key] = None if value in ("", "null", "none") else json.loads(value)
    return name, overrides


def write_tuning_prompts(config, root: Path) -> str:
    """The tuning prompt file under the data root (relative to it, as ``evaluate.prompts`` is)."""
    from photogenic.evaluation.prompts import load_prompts, write_prompts
    from photogenic.evaluation.world_prompts import tuning_prompts

    evaluation = {p.prompt for p in load_prompts(str(root / config.evaluate.prompts))}
    prompts = tuning_prompts(config.evaluate.max_prompts or len(evaluation), evaluation,
                             pool_n=config.sample_pool.n, pool_seed=config.sample_pool.seed)
    relative = "prompts/tuning.tsv"
    write_prompts(str(root / relative), prompts)
    return relative


def run_sweep(config, root: Path, variants: dict[str, dict]) -> dict:
    from photogenic.dataset.atomic import write_text
    from photogenic.evaluation.ablation import Comparison, compare, tune

    base = config.model_copy(deep=True)
    base.evaluate.prompts = write_tuning_prompts(config, root)
    base.evaluate.sampling.seed = config.evaluate.sampling.seed + TUNING_SAMPLING_SEED_OFFSET
    rows = []
    for name, overrides in variants.items():
        arm = f"sweep-{name}"
        arm_config = base.model_copy(deep=True)
        for key, value in overrides.items():
            if not hasattr(arm_config.training.quality_tune, key):
                raise SystemExit(f"training.quality_tune has no setting {key!r} (variant {name})")
            setattr(arm_config.training.quality_tune, key, value)
        started = time.perf_counter()
        tune(arm_config, arm, arm_config.training.quality_tune.input, progress=False)
        seconds = time.perf_counter() - started
        comparison = compare(arm_config, Comparison(f"{arm}-vs-pretrained", arm, "pretrained",
                                                    arm_config.evaluate.sampling.guidance_scale), progress=False)
        headline = comparison.results["headline"]
        rows.append({"variant": name, "overrides": overrides, "tune_seconds": round(seconds, 1),
                     "visual_appeal": headline.get("visual_appeal", {}),
                     "text_faithfulness": headline.get("text_faithfulness", {})})
        _print(rows[-1])
    summary = {"prompts": base.evaluate.prompts, "sampling_seed": base.evaluate.sampling.seed, "variants": rows}
    write_text(str(root / "datasets" / "ablation-sweep.json"), json.dumps(summary, indent=2) + "\n")
    return summary


def _print(row: dict) -> None:
    appeal, text = row["visual_appeal"], row["text_faithfulness"]
    print(f"  {row['variant']:<22} {json.dumps(row['overrides']):<44} tune {row['tune_seconds']:>6.1f} s  "
          f"visual appeal ({appeal.get('judge')}) {appeal.get('win_rate', math.nan):.3f} "
          f"[{appeal.get('ci_low', math.nan):.3f}, {appeal.get('ci_high', math.nan):.3f}]  "
          f"text ({text.get('judge')}) {text.get('win_rate', math.nan):.3f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="print the last sweep only (the default)")
    parser.add_argument("--run", action="store_true", help="run the sweep (2-4 minutes a variant on 2 cores)")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=key=value,...",
                        help="a variant of training.quality_tune (repeat); default: the built-in list")
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "default.yaml")
    args = parser.parse_args()

    from photogenic.config import load_config

    config = load_config(args.config)
    root = data_root(config)
    config.data.root = str(root)  # the stages the sweep runs read it too, from whatever folder
    if args.run:
        variants = dict(_parse_variant(v) for v in args.variant) or VARIANTS
        summary = run_sweep(config, root, variants)
    else:
        path = root / "datasets" / "ablation-sweep.json"
        if not path.is_file():
            print(f"No recipe sweep at {path}: run this with --run after `make demo`.", flush=True)
            result("recipe_sweep_best_visual_appeal", math.nan, ">=", 0.85)
            return
        summary = json.loads(path.read_text())
        for row in summary["variants"]:
            _print(row)
    best = max(summary["variants"], key=lambda r: r["visual_appeal"].get("win_rate", -1.0))
    print(f"  best on the tuning prompts: {best['variant']} {json.dumps(best['overrides'])}", flush=True)
    result("recipe_sweep_best_visual_appeal", best["visual_appeal"].get("win_rate", math.nan), ">=", 0.85)


if __name__ == "__main__":
    run_benchmark(main)
