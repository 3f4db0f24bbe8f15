"""The rater panel's validity: how well its members agree with the sample world's ground truth.

Loads the demo's panel (``evaluate.judges.panel`` of ``configs/default.yaml``, from its cache
under the data root) or trains it there, timing the training, then prints what its card
measured on the further held-out pool no member saw: each member's ROC AUC for "photogenic",
the majority's accuracy, and per problem the share of pictures showing it that the majority
rejects. Targets: every member's AUC at least 0.9.

    python benchmarks/rater_panel.py [--quick] [--retrain]

``--retrain`` trains into a fresh folder under benchmarks/out (the time printed is then the
training's, measured here), leaving the demo's cache alone.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks._common import OUT, data_root, result, run_benchmark  # noqa: E402

AUC_TARGET = 0.9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--retrain", action="store_true", help="train into benchmarks/out, not the demo's cache")
    parser.add_argument("--quick", action="store_true", help="the same: the panel is trained once, then read")
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "default.yaml")
    args = parser.parse_args()

    import shutil

    from photogenic.config import load_config
    from photogenic.evaluation.judges.sample_world.rater_panel import Panel, PanelSettings
    from photogenic.paths import under_root

    config = load_config(args.config)
    judges = config.evaluate.judges
    settings = PanelSettings.from_config(judges.panel)
    if args.retrain:
        cache = str(OUT / "judges")
        shutil.rmtree(cache, ignore_errors=True)
    else:
        cache = under_root(str(data_root(config)), judges.cache or "judges")
    started = time.perf_counter()
    panel = Panel(settings, cache)
    card = panel.card
    took = time.perf_counter() - started
    seconds = card["seconds"]
    print(f"panel {card['key']}: {settings.members} members, {card['training_pictures']} training pictures "
          f"({card['training_photogenic_share']:.2f} photogenic), {settings.epochs} epochs at {settings.resolution} px; "
          f"trained in {seconds['total']:.0f} s (its pools drawn {seconds['render_with_the_others']:.0f} s, members "
          f"{seconds['fit_with_the_others']:.0f} s, {judges.workers} at a time, held-out {seconds['measure']:.0f} s)"
          f"{'' if took > 5 else '; loaded from the cache in %.1f s' % took}", flush=True)
    held = card["held_out"]
    print(f"held-out pool: {held['pictures']} pictures, {held['photogenic_share']:.2f} photogenic", flush=True)
    for m, auc in enumerate(held["member_auc"]):
        print(f"  member {m}: AUC {auc:.3f}", flush=True)
    for problem, share in held["rejected_per_problem"].items():
        print(f"  majority rejects {share:.2f} of the pictures with {problem}", flush=True)
    result("panel_auc_min", min(held["member_auc"]), ">=", AUC_TARGET)
    print(f"RESULT panel_majority_accuracy={held['majority_accuracy']:.3f}", flush=True)
    print(f"RESULT panel_training_seconds={seconds['total']:.1f}", flush=True)


if __name__ == "__main__":
    run_benchmark(main)
