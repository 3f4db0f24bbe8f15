"""Do the automated judges see what the Emu effect is about? Checked on pictures whose truth is known.

For every held-out prompt of ``data/prompts/sample_world.tsv`` the sample world's renderer
draws three pictures (square, 256 px, as a model would):

- the scene exactly as the prompt names it, composed with care (good light, the photographer's
  shadow and soft background);
- the same scene, ordinary: flat overcast light, no photographer's touches, and one capture
  defect in turn (blur, sensor noise, washed-out colour, underexposure);
- the scene composed with care but with one named attribute wrong in turn (colour, placement,
  background).

The demo's headline judges (``evaluate.judges`` of ``configs/default.yaml``: the rater panel
for visual appeal, text_match for text faithfulness) go first: the visual-appeal judge should
prefer the first over the second, the text-faithfulness judge the first over the third, both
through the same pairwise maths as an evaluation (the panel by its members' majority). The text
judge should NOT care about appeal: its win rate of the first over the second (same attributes)
is printed too, and should sit near 0.5. The other judges of each criterion (technical quality,
scene attributes, subject kind) are printed as second lines.

    python benchmarks/judge_validity.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks._common import data_root, result, run_benchmark  # noqa: E402

SIZE = 256


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the first 45 prompts instead of all")
    args = parser.parse_args()

    import numpy as np

    from photogenic.config import load_config
    from photogenic.evaluation.judges.registry import TEXT_FAITHFULNESS, VISUAL_APPEAL, build_judges, prepare_judges
    from photogenic.evaluation.prompts import load_prompts
    from photogenic.evaluation.winrate import win_rate
    from photogenic.samplepool import defects
    from photogenic.samplepool.render import render_scene
    from photogenic.samplepool.world import BACKGROUNDS, GOOD_LIGHTINGS, GOOD_PLACEMENTS, VIVID_COLOURS, Scene

    prompts = load_prompts(str(REPO / "data" / "prompts" / "sample_world.tsv"), limit=45 if args.quick else None)
    capture = (defects.blur, defects.sensor_noise, defects.washed_out, defects.underexposed)
    good, ordinary, wrong = [], [], []
    for i, p in enumerate(prompts):
        rng = np.random.default_rng(i)
        light = GOOD_LIGHTINGS[i % len(GOOD_LIGHTINGS)]
        scene = Scene(p.kind, p.colour, p.background, light, p.placement, None, SIZE, SIZE, ())
        good.append(render_scene(scene, np.random.default_rng(1000 + i)).image)
        flat = Scene(p.kind, p.colour, p.background, "overcast", p.placement, None, SIZE, SIZE, ("flat_lighting",))
        ordinary.append(capture[i % len(capture)](render_scene(flat, np.random.default_rng(1000 + i)).image, rng))
        change = i % 3
        colour = _other(p.colour, VIVID_COLOURS, rng) if change == 0 else p.colour
        placement = _other(p.placement, GOOD_PLACEMENTS, rng) if change == 1 else p.placement
        background = _other(p.background, tuple(BACKGROUNDS), rng) if change == 2 else p.background
        off = Scene(p.kind, colour, background, light, placement, None, SIZE, SIZE, ())
        wrong.append(render_scene(off, np.random.default_rng(1000 + i)).image)

    config = load_config(REPO / "configs" / "default.yaml")
    judges = build_judges(config.evaluate.judges, str(data_root(config)))
    prepare_judges(judges, config.evaluate.judges.workers)
    appeal = [j for j in judges if j.criterion == VISUAL_APPEAL]
    faith = [j for j in judges if j.criterion == TEXT_FAITHFULNESS]
    stats = {}
    for name, group, a, b in (("visual_appeal_judge_agreement", appeal, good, ordinary),
                              ("text_faithfulness_judge_agreement", faith, good, wrong),
                              ("text_judge_on_appeal_only_pairs", faith, good, ordinary)):
        for rank, judge in enumerate(group):
            s = win_rate(_outcomes(judge, a, b, prompts), n_boot=2000, seed=0)
            if rank == 0:
                stats[name] = s
            print(f"{name}{'' if rank == 0 else ' (second line)'} by {judge.name}: win {s.wins} / tie {s.ties} / "
                  f"loss {s.losses}, win rate {s.win_rate:.3f} [{s.ci_low:.3f}, {s.ci_high:.3f}]", flush=True)
    result("visual_appeal_judge_agreement", stats["visual_appeal_judge_agreement"].win_rate, ">=", 0.85)
    result("text_faithfulness_judge_agreement", stats["text_faithfulness_judge_agreement"].win_rate, ">=", 0.85)
    result("text_judge_appeal_blindness", abs(stats["text_judge_on_appeal_only_pairs"].win_rate - 0.5), "<=", 0.2)


def _outcomes(judge, a, b, prompts):
    """Per pair, A's outcome as an evaluation decides it: a panel by its members' majority."""
    from photogenic.evaluation.comparisons import panel_outcomes
    from photogenic.evaluation.winrate import outcomes_from_scores

    if hasattr(judge, "score_members"):
        return panel_outcomes(judge.score_members(a, prompts), judge.score_members(b, prompts), judge.tie_margin)
    return outcomes_from_scores(judge.score(a, prompts), judge.score(b, prompts), judge.tie_margin)


def _other(value, options, rng):
    choices = [o for o in options if o != value]
    return choices[int(rng.integers(len(choices)))]


if __name__ == "__main__":
    run_benchmark(main)
