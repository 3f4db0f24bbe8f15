"""The Emu effect: does the quality-tuned model beat its pretrained self in pairwise comparisons?

Reads the win rates of an evaluation (the quality-tuned model as candidate, the pretrained one
as baseline) and prints the headline per criterion: the visual-appeal win rate and its
interval's lower bound, and the text-faithfulness win rate (win rate = (wins + ties/2) / n).
The demo's judges follow Emu's protocol: visual appeal by the rater panel, caption hidden
(``judges/sample_world/rater_panel.py``), text faithfulness as A, B, both or neither
(``text_match``; the both and neither shares are printed beside it). Targets on the embedded
default: visual appeal >= 0.85 with the lower bound above 0.75 (Emu: 0.829 on PartiPrompts,
0.912 on Open User Input), text faithfulness >= 0.5, every panel member's AUC on its held-out
pool >= 0.9. ``make demo`` ends by running this.

    python benchmarks/emu_effect.py [--quick] [--results FOLDER_OR_FILE]
    python benchmarks/emu_effect.py --candidate QUALITY_TUNED --baseline PRETRAINED [--quick]

Without models it reads the last evaluation (``<data.root>/datasets/evaluation/results.json`` of
``configs/default.yaml``, as the demo leaves it, or ``--results``). With ``--candidate`` and
``--baseline`` (diffusers pipeline folders or ``models:/`` URIs) it evaluates them first with the
default config (``--quick``: the first 27 prompts, 10 sampling steps). Training the two models
here is the training pipeline's job (pretrain -> quality_tune -> evaluate); run it, then this.
When there is no evaluation it says so and prints MISS lines.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks._common import OUT, result, run_benchmark  # noqa: E402

TARGETS = (("visual_appeal_win_rate", ">=", 0.85), ("visual_appeal_ci_low", ">", 0.75),
           ("text_faithfulness_win_rate", ">=", 0.5), ("panel_auc_min", ">=", 0.9))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="with models: 27 prompts and 10 steps")
    parser.add_argument("--results", type=Path, help="an evaluation folder or its results.json")
    parser.add_argument("--candidate", help="the quality-tuned model (folder or models:/ URI)")
    parser.add_argument("--baseline", help="the pretrained model (folder or models:/ URI)")
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "default.yaml")
    args = parser.parse_args()

    from photogenic.config import load_config
    from photogenic.paths import dataset_dir

    if bool(args.candidate) != bool(args.baseline):
        parser.error("--candidate and --baseline go together")
    if args.candidate:
        root = OUT / "emu-effect"
        # the judges from the demo's cache (they are trained there once per machine), not fresh ones
        overrides = [f"data.root={root}", f"evaluate.prompts={REPO / 'data' / 'prompts' / 'sample_world.tsv'}",
                     "evaluate.mlflow=false", f"evaluate.judges.cache={REPO / 'data' / 'judges'}"]
        if args.quick:
            overrides += ["evaluate.max_prompts=27", "evaluate.sampling.num_inference_steps=10"]
        config = load_config(args.config, overrides)
        from photogenic.evaluation.evaluate import run_evaluation

        results = run_evaluation(config, candidate=args.candidate, baseline=args.baseline).results
        source = dataset_dir(config.data.root, config.evaluate.output)
    else:
        config = load_config(args.config)
        root = Path(config.data.root)
        folder = args.results or (REPO / root if not root.is_absolute() else root) / "datasets" / "evaluation"
        path = folder if folder.suffix == ".json" else folder / "results.json"
        if not path.is_file():
            print(f"No evaluation found at {path}: run the training pipeline (pretrain -> quality_tune -> "
                  "evaluate), or pass --candidate and --baseline model folders, or --results.", flush=True)
            for metric, op, target in TARGETS:
                result(metric, math.nan, op, target)
            return
        results = json.loads(path.read_text())
        source = str(path)

    print(f"evaluation: {source} ({results['model_a']} vs {results['model_b']}, "
          f"{results['prompts']['count']} prompts)", flush=True)
    head = results["headline"]
    for criterion, row in head.items():
        print(f"  {criterion} by {row['judge']}: win {row['wins']} / tie {row['ties']} / loss {row['losses']}, "
              f"win rate {row['win_rate']:.3f} [{row['ci_low']:.3f}, {row['ci_high']:.3f}], p={row['p_value']:.3g}")
    for row in (results.get("human") or {}).get("win_rates") or []:
        if row["category"] == "all":
            print(f"  {row['judge']} (human raters, majority): win rate {row['win_rate']:.3f} "
                  f"[{row['ci_low']:.3f}, {row['ci_high']:.3f}] n={row['n']}")
    panel = (results.get("judge_cards") or {}).get("rater_panel")
    values = {
        "visual_appeal_win_rate": head.get("visual_appeal", {}).get("win_rate", math.nan),
        "visual_appeal_ci_low": head.get("visual_appeal", {}).get("ci_low", math.nan),
        "text_faithfulness_win_rate": head.get("text_faithfulness", {}).get("win_rate", math.nan),
        "panel_auc_min": min(panel["held_out"]["member_auc"]) if panel else math.nan,
    }
    for metric, op, target in TARGETS:
        result(metric, values[metric], op, target)
    for share in ("both_share", "neither_share"):
        if share in head.get("text_faithfulness", {}):
            print(f"RESULT text_faithfulness_{share}={head['text_faithfulness'][share]:.3f}", flush=True)
    for criterion, row in head.items():  # the second line of each criterion: its other judges
        for other in results["win_rates"]:
            if other["criterion"] == criterion and other["category"] == "all" and other["judge"] != row["judge"]:
                print(f"  {criterion} by {other['judge']} (second line): win rate {other['win_rate']:.3f} "
                      f"[{other['ci_low']:.3f}, {other['ci_high']:.3f}]", flush=True)


if __name__ == "__main__":
    run_benchmark(main)
