"""The trainer's quality-tuning against a loop made like diffusers' own example script
(examples/text_to_image/train_text_to_image.py), on the same model and the same images.

The model: a Stable-Diffusion-layout pipeline with random weights, nothing downloaded
(tests/support/tiny_models.py builds it: a CLIP text encoder and a BPE tokenizer written
locally): a 5.6M-parameter U-Net (64 and 128 channels, 2 layers a block, 16x16 latents), a 4x
AutoencoderKL, 64 px images. The data: the same 200 sample-pool images, written once as a
photogenic dataset (what ``quality_tune`` reads) and as an image folder with metadata.jsonl
(what the script reads). Both train batch 16, AdamW at 1e-4, fp32, no EMA.

- The reference, benchmarks/_reference_loop.py (its doc lists what it does as the script does):
  images decoded and transformed every step, the autoencoder and the text encoder run every
  step, torch's default AdamW, accelerate's ``prepare``.
- The trainer: ``photogenic step quality_tune`` with the recipe's defaults otherwise (its
  caches, MLflow tracking into a store made before the timed runs, as a project has one after
  its first run), checkpoints every 500 steps as the script's, validation only after the last
  step. Its latent and text caches are emptied before every run, so each run is a first run on
  a new training set: the cache is filled by the first epoch's batches, not before the first
  step. (The full run adds one run with the caches its previous run left, for information.)

Each runs as a process of its own, alternating: reference, trainer, reference, trainer. Per
run: samples/s over the steps after the 10th (the U-Net's first calls and the first epoch's
cache fill included; validation excluded), read from the trainer's MLflow throughput windows,
and the seconds from the process's start to the end of its first step. The RESULT lines are the
medians, over the two pairs, of trainer / reference.

    python benchmarks/vs_reference.py [--quick] [--set training.quality_tune.KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import OUT, ingested_pool, result, run_benchmark  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
WORK = OUT / "vs-reference"
IMAGES = 200
BATCH = 16
RESOLUTION = 64
LEARNING_RATE = 1e-4
WINDOW_FROM = 10  # steps 11 onwards are timed, as in the measurement the targets came from
LOG_EVERY = 10


def tiny_sd(folder: Path) -> Path:
    """The pipeline both loops train (made once)."""
    from tests.support.tiny_models import tiny_sd_pipeline

    if not (folder / "model_index.json").is_file():
        tiny_sd_pipeline(folder, seed=0, unet_channels=(64, 128), layers_per_block=2, vae_channels=(32, 64, 64),
                         image_size=RESOLUTION, text_width=32, max_length=77, groups=32, head_dim=8)
    return folder


def training_images(root: Path, folder: Path) -> str:
    """The same IMAGES images as a photogenic dataset under ``root`` and as an image folder
    (metadata.jsonl) in ``folder``; returns the dataset's name."""
    import hashlib

    import pyarrow as pa

    from photogenic.dataset.schema import QUARANTINE_SCHEMA
    from photogenic.dataset.shards import ShardWriter
    from photogenic.dataset.store import Dataset

    name = "reference_set"
    dataset = Dataset(str(root / "datasets" / name), name=name)
    if dataset.exists() and (folder / "metadata.jsonl").is_file():
        return name
    pool = ingested_pool(IMAGES + 40)  # the pool's corrupt and duplicate files leave fewer rows than it has
    rows = pool.read_manifest(columns=["sample_id", "shard", "offset", "length", "format", "caption"]).to_pylist()
    if len(rows) < IMAGES:
        raise RuntimeError(f"the ingested pool has {len(rows)} rows, fewer than {IMAGES}")
    folder.mkdir(parents=True, exist_ok=True)
    writer = ShardWriter(dataset.shards_dir, first_index=0, max_images=10_000, max_bytes=2**30)
    manifest, metadata = [], []
    for row in rows[:IMAGES]:
        data = pool.image_bytes(row)
        extension = row["format"] or "jpg"
        stored = writer.add(row["sample_id"], extension, data)
        manifest.append({"sample_id": row["sample_id"], "shard": f"shards/{stored.shard}", "offset": stored.offset,
                         "length": stored.length, "caption": row["caption"] or ""})
        file_name = f"{hashlib.sha256(data).hexdigest()[:16]}.{extension}"
        (folder / file_name).write_bytes(data)
        metadata.append(json.dumps({"file_name": file_name, "text": row["caption"] or ""}))
    writer.close_shard()
    (folder / "metadata.jsonl").write_text("\n".join(metadata) + "\n", encoding="utf-8")
    dataset.write(pa.Table.from_pylist(manifest), QUARANTINE_SCHEMA.empty_table(), {"rows": IMAGES})
    return name


def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def run_reference(pipeline: Path, images: Path, steps: int) -> dict:
    command = [sys.executable, str(REPO / "benchmarks" / "_reference_loop.py"), "--pipeline", str(pipeline),
               "--images", str(images), "--steps", str(steps), "--window-from", str(WINDOW_FROM),
               "--batch-size", str(BATCH), "--resolution", str(RESOLUTION), "--learning-rate", str(LEARNING_RATE)]
    done = subprocess.run(command, env=child_env(), cwd=WORK, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("REFERENCE ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"the reference loop failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(lines[-1].removeprefix("REFERENCE "))


def trainer_config(root: Path, dataset: str, pipeline: Path, steps: int, tracking_uri: str, overrides: list[str]):
    from photogenic.config import load_config

    recipe = "training.quality_tune"
    return load_config(None, [
        f"data.root={root}", "dvc.enabled=false", f"training.model.resolution={RESOLUTION}",
        f"{recipe}.input={dataset}", f"{recipe}.init_from={pipeline}", f"{recipe}.output=tuned",
        f"{recipe}.max_steps={steps}", f"{recipe}.batch_size={BATCH}", f"{recipe}.learning_rate={LEARNING_RATE}",
        f"{recipe}.ema_decay=null", f"{recipe}.mixed_precision=no", f"{recipe}.log_every={LOG_EVERY}",
        # the same 200 images train (no held-out share); the script checkpoints every 500 steps
        f"{recipe}.validation_fraction=0", f"{recipe}.checkpoint_every=500", f"{recipe}.validate_every={10 * steps}",
        f"{recipe}.validation_prompts=[a photo]", f"{recipe}.sample_steps=1",
        f"training.tracking.tracking_uri={tracking_uri}", "training.tracking.register_model=false", *overrides])


def run_trainer(config_path: Path, root: Path, tracking_uri: str, steps: int, cold: bool) -> dict:
    from mlflow import MlflowClient

    from photogenic.training.caches import cache_root

    if cold:
        shutil.rmtree(cache_root(str(root / "datasets" / "reference_set")), ignore_errors=True)
    command = [sys.executable, "-m", "photogenic.cli", "step", "quality_tune", "--quiet", "--config", str(config_path)]
    done = subprocess.run(command, env=child_env(), cwd=WORK, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"the trainer failed:\n{done.stdout}\n{done.stderr}")
    summary = json.loads((root / "models" / "tuned.json").read_text())
    history = sorted(MlflowClient(tracking_uri).get_metric_history(summary["mlflow_run_id"], "samples_per_second"),
                     key=lambda m: m.step)
    samples = seconds = 0.0
    previous = 0
    for metric in history:  # each logged window: the samples/s of the steps since the one before
        if previous >= WINDOW_FROM:
            window = (metric.step - previous) * BATCH
            samples += window
            seconds += window / metric.value
        previous = metric.step
    return {"seconds_to_first_step": summary["seconds_to_first_step"], "samples_per_second": samples / seconds,
            "latents_encoded": summary["latents_encoded"], "latents_from_cache": summary["latents_from_cache"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="25 steps a run instead of 60 (under two minutes).")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="A config override for the trainer (repeatable), e.g. training.quality_tune.compile=default.")
    args = parser.parse_args()
    steps = 25 if args.quick else 60

    import mlflow
    import torch
    from diffusers import UNet2DConditionModel

    from photogenic.config import dump_config

    WORK.mkdir(parents=True, exist_ok=True)
    root = WORK / "data"
    pipeline = tiny_sd(WORK / "pipeline")
    images = WORK / "images"
    dataset = training_images(root, images)
    tracking_uri = f"sqlite:///{WORK / 'mlflow.db'}"
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.search_experiments()  # the store's tables, made before the timed runs
    config = trainer_config(root, dataset, pipeline, steps, tracking_uri, args.overrides)
    config_path = WORK / "quality_tune.yaml"
    config_path.write_text(dump_config(config))
    unet_parameters = sum(p.numel() for p in UNet2DConditionModel.from_pretrained(pipeline / "unet").parameters())
    print(f"model: U-Net {unet_parameters / 1e6:.2f}M parameters, {RESOLUTION} px, batch {BATCH}, {steps} steps a run "
          f"(samples/s over steps {WINDOW_FROM + 1}-{steps}); {IMAGES} images; torch threads "
          f"{torch.get_num_threads()}; trainer overrides: {' '.join(args.overrides) or 'none'}", flush=True)

    pairs = []
    for round_ in range(2):
        reference = run_reference(pipeline, images, steps)
        print(f"round {round_ + 1} reference: {reference['samples_per_second']:.1f} samples/s, first step after "
              f"{reference['seconds_to_first_step']:.1f} s", flush=True)
        trainer = run_trainer(config_path, root, tracking_uri, steps, cold=True)
        print(f"round {round_ + 1} trainer:   {trainer['samples_per_second']:.1f} samples/s, first step after "
              f"{trainer['seconds_to_first_step']:.1f} s (empty caches; {trainer['latents_encoded']} images "
              f"encoded, {trainer['latents_from_cache']} batch items from the latent cache)", flush=True)
        pairs.append((reference, trainer))
    if not args.quick:
        warm = run_trainer(config_path, root, tracking_uri, steps, cold=False)
        print(f"trainer with the caches its last run left: {warm['samples_per_second']:.1f} samples/s, first step "
              f"after {warm['seconds_to_first_step']:.1f} s ({warm['latents_encoded']} images encoded)", flush=True)

    speed = [t["samples_per_second"] / r["samples_per_second"] for r, t in pairs]
    start = [t["seconds_to_first_step"] / r["seconds_to_first_step"] for r, t in pairs]
    print(f"trainer / reference per round: samples/s {', '.join(f'{x:.2f}' for x in speed)}; "
          f"time to first step {', '.join(f'{x:.2f}' for x in start)}")
    result("trainer_vs_reference_loop", statistics.median(speed), ">=", 1.2)
    result("time_to_first_step_vs_reference", statistics.median(start), "<=", 1.5)


if __name__ == "__main__":
    run_benchmark(main)
