"""Subject legibility: do a model's samples show the kind of subject the prompt names?

The training issue asks for sample grids that show recognisable scenes. The scene checker
measures background, colour and placement; this measures the subject itself: for each held-out
prompt of ``data/prompts/sample_world.tsv`` the model draws the evaluation's samples (its
sampler, steps, guidance and seeds from ``configs/default.yaml``, through the evaluation's own
sampling code), and the sample-world kind checker
(``photogenic.evaluation.judges.sample_world.kind_check``, a small CNN trained here on a pool of the world's) names
the kind it shows. Printed per model: the share named right (top-1; chance is 1/9) and, first,
the checker's own accuracy on a held-out pool (defects and odd crops included), the ceiling
of what it can tell.

    python benchmarks/subject_legibility.py [--quick] [--model NAME=FOLDER ...]

Without ``--model`` it reads the demo's pretrained and quality-tuned models
(``<data.root>/models/{pretrained,quality_tuned}``); when there are none it says so and prints
MISS lines. Target: at least half of the subjects named right.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks._common import data_root, result, run_benchmark  # noqa: E402

STAGES = ("pretrained", "quality_tuned")
TOP1_TARGET = 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="45 prompts instead of 90")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=FOLDER",
                        help="a diffusers pipeline folder to measure (repeatable)")
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "default.yaml")
    args = parser.parse_args()

    import numpy as np
    import torch

    from photogenic.config import load_config
    from photogenic.evaluation.judges.sample_world import kind_check
    from photogenic.evaluation.evaluate import sampling_settings
    from photogenic.evaluation.prompts import load_prompts
    from photogenic.evaluation.sampling import decode_png, jobs_for, sample_model
    from photogenic.paths import under_root

    config = load_config(args.config)
    models = dict(_parse(spec, parser) for spec in args.model) or _demo_models(config)

    started = time.perf_counter()
    # the evaluation's checker, from the demo's judge cache (trained there once per machine)
    judges = config.evaluate.judges
    checker = kind_check.classifier(under_root(str(data_root(config)), judges.cache) if judges.cache else None)
    images, labels = kind_check.training_images(400, seed=kind_check.HELD_OUT_SEED)  # a pool it never saw
    with torch.no_grad():
        accuracy = float((checker(torch.from_numpy(images)).argmax(1).numpy() == labels).mean())
    print(f"kind checker ready in {time.perf_counter() - started:.0f} s; {len(labels)} held-out pool images",
          flush=True)
    result("kind_checker_accuracy_on_held_out_pool", accuracy, ">=", 0.8)

    if not models:
        print("No models found: run `make demo` (pretrain -> quality_tune), or pass --model NAME=FOLDER.", flush=True)
        for stage in STAGES:
            result(f"subject_kind_top1_{stage}", math.nan, ">=", TOP1_TARGET)
        return

    prompts = [p for p in load_prompts(str(REPO / "data" / "prompts" / "sample_world.tsv")) if p.kind]
    prompts = prompts[:45 if args.quick else 90]
    settings = sampling_settings(config)
    jobs = jobs_for(prompts, settings)  # the evaluation's seeds, so these are the images it judges
    names = kind_check.kinds()
    wanted = np.array([names.index(job.prompt.kind) for job in jobs])
    print(f"{len(prompts)} prompts, {settings.num_inference_steps} steps, guidance {settings.guidance_scale}; "
          f"chance {1 / len(names):.3f}", flush=True)
    for name, folder in models.items():
        samples = [decode_png(sample.png) for sample in sample_model(name, folder, jobs, settings, progress=False)]
        named = kind_check.kind_probabilities(samples, checker).argmax(1)
        counts = np.bincount(named, minlength=len(names))
        print(f"  {name} ({folder}): named {', '.join(f'{k} {c}' for k, c in zip(names, counts))}", flush=True)
        result(f"subject_kind_top1_{name}", float((named == wanted).mean()), ">=", TOP1_TARGET)


def _parse(spec: str, parser: argparse.ArgumentParser) -> tuple[str, str]:
    name, sep, folder = spec.partition("=")
    if not sep or not name or not Path(folder).is_dir():
        parser.error(f"--model takes NAME=FOLDER with an existing folder, not {spec!r}")
    return name, folder


def _demo_models(config) -> dict[str, str]:
    root = data_root(config)
    return {stage: str(root / "models" / stage) for stage in STAGES
            if (root / "models" / stage / "model_index.json").is_file()}


if __name__ == "__main__":
    run_benchmark(main)
