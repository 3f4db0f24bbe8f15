"""Trainer throughput against a plain PyTorch loop on the same model, data, batch and optimizer.

The plain loop is what the trainer reduces to: DataLoader -> cached caption embeddings ->
noise, timesteps -> U-Net -> MSE -> AdamW. The trainer adds accelerate, gradient clipping, EMA,
noise offset, caption dropout, per-micro-batch generators, logging and checkpoints (every
``CHECKPOINT_EVERY`` steps, as in a real run); validation sampling is excluded from its
throughput (it is evaluation, timed separately by the trainer). Both run in this process, one
after the other, on the embedded default model (configs/default.yaml).

    python benchmarks/train_speed.py [--quick]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import OUT, result, sample_pool  # noqa: E402


def training_data(n: int):
    """An ingested dataset of ``n`` sample-pool images under benchmarks/out (made once)."""
    from photogenic.config import load_config
    from photogenic.dataset.store import Dataset
    from photogenic.stages.ingest import ingest

    root = OUT / f"train-speed-{n}"
    dataset = Dataset(str(root / "datasets" / "ingested"))
    if not dataset.exists():
        pool = sample_pool(n)
        cfg = load_config(None, [f"data.root={root}", f"ingest.sources.0.uri={pool}/*.tar", "ingest.workers=0"])
        ingest(cfg, progress=False)
    return dataset


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def plain_loop(pipe, dataset, rows, recipe, resolution: int, steps: int) -> float:
    """Samples/s of the bare loop."""
    import torch
    import torch.nn.functional as F
    from diffusers import DDPMScheduler
    from torch.utils.data import DataLoader

    from photogenic.training.data import CaptionedImages, collate
    from photogenic.training.trainer import adamw

    torch.manual_seed(0)
    if recipe.threads:
        torch.set_num_threads(recipe.threads)
    unet = pipe.unet
    unet.train()
    scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    # the trainer's AdamW (fused where the device has the kernel): the ratio is the trainer's
    # overhead, not a choice of optimizer kernel
    optimizer = adamw(unet.parameters(), recipe.learning_rate, recipe.weight_decay, torch.device("cpu"))
    images = CaptionedImages(dataset.path, rows, resolution, recipe.decoded_cache_mb)
    loader = DataLoader(images, batch_size=recipe.batch_size, shuffle=True,
                        collate_fn=collate, num_workers=recipe.workers, drop_last=True,
                        persistent_workers=recipe.workers > 0)
    cache: dict[str, torch.Tensor] = {}
    done, started = 0, time.perf_counter()
    while done < steps:
        for batch in loader:
            missing = [c for c in dict.fromkeys(batch["caption"]) if c not in cache]
            if missing:
                with torch.no_grad():
                    embeds, _ = pipe.encode_prompt(missing, "cpu", 1, False)
                cache.update(zip(missing, embeds))
            embeds = torch.stack([cache[c] for c in batch["caption"]])
            latents = batch["pixels"]
            noise = torch.randn_like(latents)
            timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (latents.shape[0],))
            prediction = unet(scheduler.add_noise(latents, noise, timesteps), timesteps, embeds).sample
            v_prediction = scheduler.config.prediction_type == "v_prediction"
            target = scheduler.get_velocity(latents, noise, timesteps) if v_prediction else noise
            loss = F.mse_loss(prediction, target)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            done += 1
            if done == steps:
                break
    return steps * recipe.batch_size / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Fewer steps on a smaller pool (under a minute).")
    args = parser.parse_args()
    steps, n = (20, 200) if args.quick else (60, 1000)
    checkpoint_every = 10 if args.quick else 20

    import torch

    from photogenic.config import load_config
    from photogenic.models import build_pipeline
    from photogenic.training.data import read_rows, split_rows
    from photogenic.training.trainer import Trainer, seed_everything

    dataset = training_data(n)
    cfg = load_config(Path(__file__).resolve().parents[1] / "configs" / "default.yaml", [
        f"training.pretrain.max_steps={steps}", f"training.pretrain.checkpoint_every={checkpoint_every}",
        # every step at the model's resolution and uniform timesteps, as the plain loop trains
        "training.pretrain.low_resolution=null", "training.pretrain.low_resolution_share=0",
        "training.pretrain.timestep_sampling=uniform",
        f"training.pretrain.validate_every={steps * 10}", "training.pretrain.validation_prompts=[a cat]",
        "training.pretrain.sample_steps=1", "training.pretrain.validation_batches=1"])
    recipe = cfg.training.pretrain
    rows, validation = split_rows(read_rows(dataset, recipe.caption_column), recipe.validation_fraction)

    seed_everything(0)
    pipe = build_pipeline(cfg.training.model)
    initial = {k: v.clone() for k, v in pipe.unet.state_dict().items()}
    params = sum(p.numel() for p in pipe.unet.parameters())
    print(f"model: U-Net {params / 1e6:.2f}M parameters, {cfg.training.model.resolution}px {cfg.training.model.space} "
          f"space; batch {recipe.batch_size}, {steps} steps, {recipe.workers} DataLoader worker(s), "
          f"{recipe.threads or torch.get_num_threads()} torch thread(s)")

    # untimed warm-up (shard pages into the OS cache, kernels initialised), so the loop timed
    # first is not charged for what the second gets for free
    plain_loop(pipe, dataset, rows, recipe, cfg.training.model.resolution, 2)
    pipe.unet.load_state_dict(initial)
    plain = plain_loop(pipe, dataset, rows, recipe, cfg.training.model.resolution, steps)
    print(f"plain PyTorch loop: {plain:.1f} samples/s; peak RSS so far {peak_rss_mb():.0f} MB")

    pipe.unet.load_state_dict(initial)  # the same starting weights for the trainer
    trainer = Trainer(recipe, pipe, dataset.path, rows, validation, str(OUT / "train-speed-model"),
                      resolution=cfg.training.model.resolution, progress=False)
    trained = trainer.train()
    print(f"trainer (accelerate, EMA, clipping, checkpoints every {checkpoint_every}): "
          f"{trained.samples_per_second:.1f} samples/s; peak RSS {peak_rss_mb():.0f} MB")
    if torch.cuda.is_available():
        print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MB")
    result("trainer_vs_plain_loop", trained.samples_per_second / plain, ">=", 0.9)
    print(f"peak memory (RSS, whole process): {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
