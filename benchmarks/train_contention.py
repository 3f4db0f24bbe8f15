"""The demo's pretraining beside a competing CPU-bound process: steps/s solo and contended.

A laptop or a shared node is rarely idle, and a pod's CPU limit is usually below the node's
core count. torch starts one OpenMP thread per core it sees; when those threads outnumber the
CPUs the process really gets, each parallel region ends in a barrier where the threads that have a
core spin, waiting for one that has none, and training slows by orders of magnitude instead of
sharing the machine. The trainer sizes its thread pool with ``photogenic.cpu_quota`` (the cgroup
quota and affinity, less the DataLoader workers) when ``training.<stage>.threads`` is unset.

This runs the demo's pretraining recipe (configs/default.yaml, its 16 px phase: 87% of the
demo's steps) twice in this process: alone, then while a second process runs torch matrix
products on every core (started here, stopped here), and prints the contended speed as a share of
the solo one. Step times come from the trainer's own logged windows (validation, checkpoints and
the first window, which waits for the DataLoader worker to start, excluded).

    python benchmarks/train_contention.py [--quick] [--set KEY=VALUE ...]

``--set training.pretrain.threads=N`` pins the thread count (N = the machine's core count is what
torch chooses by itself).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import OUT, ingested_pool, result, run_benchmark  # noqa: E402
from photogenic.training.tracking import NullTracker  # noqa: E402

TARGET = 0.4
#: the competitor: torch matrix products on as many threads as the machine has cores, forever
#: (until this benchmark stops it)
COMPETITOR = """
import os, torch
torch.set_num_threads(os.cpu_count())
a = torch.randn(384, 384)
while True:
    a = torch.tanh(a @ a)
"""


class StepTimes(NullTracker):
    """Keeps the trainer's logged throughput windows, one per ``log_every`` steps."""

    def __init__(self, samples_per_step: int):
        self.samples_per_step = samples_per_step
        self.windows: list[tuple[int, float]] = []  # (steps, seconds)
        self.last_step = 0

    def log_metrics(self, metrics, step):
        if "samples_per_second" in metrics:
            steps = step - self.last_step
            self.windows.append((steps, steps * self.samples_per_step / metrics["samples_per_second"]))
            self.last_step = step

    def steps_per_second(self, skip: int) -> float:
        kept = self.windows[skip:]
        return sum(s for s, _ in kept) / sum(t for _, t in kept)


def train(cfg, pipe, dataset, rows, validation, steps: int, skip_windows: int) -> tuple[float, int]:
    """Steps/s of ``steps`` pretraining steps (after ``skip_windows`` logged windows), and the
    torch thread count the trainer ran with."""
    import torch

    from photogenic.training.trainer import Trainer

    recipe = cfg.training.pretrain.model_copy(update={"max_steps": steps})
    times = StepTimes(recipe.batch_size * recipe.grad_accum)
    trainer = Trainer(recipe, pipe, dataset.path, rows, validation, str(OUT / "train-contention-model"),
                      resolution=cfg.training.model.resolution, tracker=times, progress=False)
    trainer.train()
    return times.steps_per_second(skip_windows), torch.get_num_threads()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Fewer steps (under a minute on 2 cores).")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="A config override on top (repeatable).")
    args = parser.parse_args()
    solo_steps, contended_steps = (80, 40) if args.quick else (400, 200)
    log_every = 4

    from photogenic.config import load_config
    from photogenic.models import build_pipeline
    from photogenic.training.data import read_rows, split_rows
    from photogenic.training.trainer import seed_everything

    dataset = ingested_pool(200)
    cfg = load_config(Path(__file__).resolve().parents[1] / "configs" / "default.yaml", [
        # the demo's recipe in its low-resolution phase, where it spends 87% of its steps
        "training.model.resolution=16", "training.pretrain.low_resolution=null",
        "training.pretrain.low_resolution_share=0", f"training.pretrain.log_every={log_every}",
        "training.pretrain.validate_every=100000", "training.pretrain.checkpoint_every=100000",
        "training.pretrain.validation_prompts=[a cat]", "training.pretrain.sample_steps=1",
        "training.pretrain.validation_batches=1", *args.overrides])
    recipe = cfg.training.pretrain
    rows, validation = split_rows(read_rows(dataset, recipe.caption_column), recipe.validation_fraction)
    seed_everything(0)
    pipe = build_pipeline(cfg.training.model)
    print(f"demo pretraining at {cfg.training.model.resolution} px, batch {recipe.batch_size}, "
          f"{recipe.workers} DataLoader worker(s), threads setting: {recipe.threads or 'unset'}; "
          f"{os.cpu_count()} cores", flush=True)

    # the first window waits for the DataLoader worker to start: not timed
    skip = 1
    solo, threads = train(cfg, pipe, dataset, rows, validation, skip * log_every + solo_steps, skip)
    print(f"solo: {solo:.2f} steps/s on {threads} torch thread(s)", flush=True)

    competitor = subprocess.Popen([sys.executable, "-c", COMPETITOR])
    try:
        time.sleep(2)  # the competitor is up and spinning before the clock starts
        if competitor.poll() is not None:
            raise SystemExit(f"the competing process exited with {competitor.returncode}")
        contended, _ = train(cfg, pipe, dataset, rows, validation, skip * log_every + contended_steps, skip)
    finally:
        competitor.kill()
        competitor.wait()
    print(f"beside a torch process busy on all {os.cpu_count()} cores: {contended:.2f} steps/s", flush=True)
    result("train_speed_under_contention", contended / solo, ">=", TARGET)


if __name__ == "__main__":
    run_benchmark(main)
