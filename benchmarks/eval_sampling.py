"""Evaluation sampling on the data plane: the same PNG bytes as drawing in this process, and what
Ray costs on this machine.

Both models draw the first prompts of the demo's prompt set with the demo's sampling settings
(``configs/default.yaml``'s evaluate section), once in this process and once through Ray actors
(``evaluate.sampling.workers``, each holding the model, torch on this process's thread count),
for each thread count asked (``--threads``; the demo's evaluate step runs on 1, the thread count
its training steps leave; a fresh process on torch's default). Printed: the wall time of each
way, Ray's start-up apart, and whether every image's bytes agree.

    python benchmarks/eval_sampling.py [--quick] [--prompts N] [--workers N] [--threads N ...]
                                       [--model NAME=FOLDER ...]

Without ``--model`` it reads the demo's pretrained and quality-tuned models
(``<data.root>/models/{pretrained,quality_tuned}``); when there are none it builds the configured
architecture untrained (the same work per image, other pixels). Targets: every image identical;
Ray's sampling, start-up apart, at least 0.9 times as fast as this process's.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks._common import data_root, result, run_benchmark  # noqa: E402

STAGES = ("pretrained", "quality_tuned")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 prompts, one thread count")
    parser.add_argument("--prompts", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2, help="Ray actors per model")
    parser.add_argument("--threads", type=int, action="append", default=[],
                        help="torch threads of this process (repeatable; default: 1 and torch's default)")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=FOLDER")
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "default.yaml")
    args = parser.parse_args()

    import torch

    from photogenic.config import load_config
    from photogenic.dataplane.session import ray_session
    from photogenic.evaluation.evaluate import sampling_settings
    from photogenic.evaluation.prompts import load_prompts
    from photogenic.evaluation.sampling import jobs_for, sample_model

    config = load_config(args.config)
    root = data_root(config)
    settings = sampling_settings(config)
    prompts = load_prompts(str(root / config.evaluate.prompts), limit=4 if args.quick else args.prompts)
    jobs = jobs_for(prompts, settings)
    models = dict(m.split("=", 1) for m in args.model) or _demo_models(root, config)
    counts = args.threads or ([torch.get_num_threads()] if args.quick else sorted({1, torch.get_num_threads()}))
    print(f"{len(jobs)} images per model, {len(models)} models ({', '.join(models)}), {args.workers} Ray workers, "
          f"settings {settings}")

    for name, folder in models.items():  # imports and first loads out of the timings
        list(sample_model(name, folder, jobs[:1], settings, progress=False))
    identical, speeds = True, []
    for threads in counts:
        torch.set_num_threads(threads)
        began = time.perf_counter()
        here = {name: [s.png for s in sample_model(name, folder, jobs, settings, progress=False)]
                for name, folder in models.items()}
        local = time.perf_counter() - began
        began = time.perf_counter()
        with ray_session():
            started = time.perf_counter()
            on_ray = {name: [s.png for s in sample_model(name, folder, jobs, settings, progress=False,
                                                           workers=args.workers)]
                      for name, folder in models.items()}
            sampled = time.perf_counter()
        total = time.perf_counter() - began
        same = on_ray == here
        identical &= same
        speeds.append(local / (sampled - started))
        differ = sum(a != b for name in here for a, b in zip(here[name], on_ray[name]))
        print(f"threads {threads}: in this process {local:.1f} s; on Ray {total:.1f} s in all (start-up "
              f"{started - began:.1f} s, sampling {sampled - started:.1f} s with the actors' start and model loads, "
              f"shutdown {total - (sampled - began):.1f} s);"
              f" {differ} of {sum(map(len, here.values()))} images differ")
    result("eval_sampling_bytes_identical", float(identical), ">=", 1)
    result("eval_sampling_ray_speed_without_startup", min(speeds), ">=", 0.9)


def _demo_models(root: Path, config) -> dict[str, str]:
    found = {name: str(root / "models" / name) for name in STAGES
             if (root / "models" / name / "model_index.json").exists()}
    if found:
        return found
    from photogenic.models.factory import build_pipeline

    folder = Path(tempfile.mkdtemp(prefix="eval-sampling-")) / "untrained"
    build_pipeline(config.training.model).save_pretrained(str(folder))
    print(f"no trained models under {root / 'models'}: an untrained one of the configured architecture")
    return {"untrained": str(folder)}


if __name__ == "__main__":
    run_benchmark(main)
