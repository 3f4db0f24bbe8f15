"""Trainer throughput against a plain PyTorch loop on the same model, data, batch and optimizer.

The plain loop is what the trainer reduces to: DataLoader -> cached caption embeddings ->
noise, timesteps -> U-Net -> MSE -> AdamW. The trainer adds accelerate, gradient clipping, EMA,
noise offset, caption dropout, per-micro-batch generators, logging and checkpoints (every
``CHECKPOINT_EVERY`` steps, as in a real run); validation sampling is excluded from its
throughput (it is evaluation, timed separately by the trainer). Both run in this process, one
after the other, on the embedded default model (configs/default.yaml), on the device accelerate
picks (a GPU where there is one), with the recipe's mixed precision.

``--gpu`` measures a model of GPU size instead (randomly initialised, nothing downloaded): a
latent-space U-Net of the width of configs/gpu-training.yaml's, 256 px images through a 16-channel
autoencoder, batch 64, bf16; checkpoints then only at the end, as a real run writes a
checkpoint of several GB once per thousand steps, and the trainer's throughput is read from its
own logged windows, which a checkpoint written at the last step is not in. ``--set KEY=VALUE``
changes any setting on top (e.g. ``--set training.pretrain.batch_size=32``, or the speed switches:
``training.pretrain.latent_cache=true``, ``channels_last=true``, ``compile=default``).

``--gpu`` also prints the model FLOPs utilisation (MFU): the U-Net's forward and backward FLOPs
a sample (counted by torch's FlopCounterMode on one batch) times the trainer's samples/s, over
the GPU's dense bf16 peak (``--peak-tflops``, else looked up by the GPU's name), beside
MosaicML's published Stable Diffusion 2 figure.

    python benchmarks/train_speed.py [--quick] [--gpu [--peak-tflops T]] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import OUT, ingested_pool, result, run_benchmark  # noqa: E402
from photogenic.training.tracking import NullTracker  # noqa: E402

#: --gpu: a model of the width of configs/gpu-training.yaml's, with random weights and the bundled
#: text encoder, so it runs on a GPU machine that reaches no hub
GPU_MODEL = [
    "training.model.space=latent", "training.model.resolution=256",
    "training.model.autoencoder.latent_channels=16",
    "training.model.autoencoder.block_out_channels=[64, 128, 256, 256]",  # /8: 32 x 32 latents
    "training.model.unet.block_out_channels=[320, 640, 1280]",
    "training.model.unet.down_block_types=[CrossAttnDownBlock2D, CrossAttnDownBlock2D, DownBlock2D]",
    "training.model.unet.up_block_types=[UpBlock2D, CrossAttnUpBlock2D, CrossAttnUpBlock2D]",
    "training.model.unet.layers_per_block=2", "training.model.unet.attention_head_dim=64",
    "training.model.unet.norm_num_groups=32",
    "training.pretrain.batch_size=64", "training.pretrain.mixed_precision=bf16", "training.pretrain.workers=8",
    "training.pretrain.threads=null",
]


#: dense bf16 peak, TFLOP/s, by a piece of the name torch gives the GPU (first match wins)
PEAK_BF16_TFLOPS = {"H100 PCIe": 756, "H100": 989, "H200": 989, "GH200": 989, "A100": 312, "L40S": 362, "L4": 121,
                    "A10G": 70, "A10": 125}
#: MosaicML's Stable Diffusion 2 base (865M-parameter U-Net) at 256 px, with cached latents
MOSAICML_SD2 = "MosaicML's SD2 (865M U-Net, 256 px, cached latents): 1,100 images/s on 8 A100s, about 137 a GPU"


def training_flops_per_sample(pipe, batch_size: int, resolution: int, device, dtype) -> float:
    """FLOPs of one U-Net forward and backward a sample (matmuls and convolutions, what MFU counts)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    unet = pipe.unet
    side = resolution // int(pipe.vae_scale_factor)
    latents = torch.randn(batch_size, unet.config.in_channels, side, side, device=device)
    timesteps = torch.randint(0, 1000, (batch_size,), device=device)
    embeds = torch.randn(batch_size, pipe.tokenizer.model_max_length, unet.config.cross_attention_dim, device=device)
    with FlopCounterMode(display=False) as counter, torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
        unet(latents, timesteps, embeds).sample.float().pow(2).mean().backward()
    unet.zero_grad(set_to_none=True)
    return counter.get_total_flops() / batch_size


def peak_tflops(device, given: float | None) -> float | None:
    import torch

    if given is not None or device.type != "cuda":
        return given
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_BF16_TFLOPS.items() if key in name), None)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def gpu_peak(device) -> str:
    """Peak GPU memory since the last call (and reset it), or '' on the CPU."""
    import torch

    if device.type != "cuda":
        return ""
    peak = torch.cuda.max_memory_allocated(device) / 2**30
    torch.cuda.reset_peak_memory_stats(device)
    return f"; peak GPU memory {peak:.1f} GiB"


class ThroughputWindows(NullTracker):
    """A tracker that keeps the trainer's logged throughput windows (samples/s every log_every
    steps): training alone, without validation or a checkpoint written at the last step."""

    def __init__(self, samples_per_step: int):
        self.samples_per_step = samples_per_step
        self.last_step = 0
        self.seconds = 0.0
        self.samples = 0

    def log_metrics(self, metrics, step):
        if "samples_per_second" in metrics:
            samples = (step - self.last_step) * self.samples_per_step
            self.seconds += samples / metrics["samples_per_second"]
            self.samples += samples
            self.last_step = step

    def samples_per_second(self) -> float:
        return self.samples / self.seconds if self.seconds else float("nan")


def plain_loop(pipe, dataset, rows, recipe, resolution: int, steps: int, device) -> float:
    """Samples/s of the bare loop, on ``device`` with the recipe's mixed precision."""
    import torch
    import torch.nn.functional as F
    from diffusers import DDPMScheduler
    from torch.utils.data import DataLoader

    from photogenic.cpu_quota import compute_threads
    from photogenic.models import to_latents
    from photogenic.training.data import CaptionedImages, collate
    from photogenic.training.trainer import adamw, mixed_precision

    torch.manual_seed(0)
    torch.set_num_threads(recipe.threads or compute_threads(recipe.workers))  # as the trainer does
    pipe.to(device)
    unet = pipe.unet
    unet.train()
    scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    # the trainer's AdamW (fused where the device has the kernel): the ratio is the trainer's
    # overhead, not a choice of optimizer kernel
    optimizer = adamw(unet.parameters(), recipe.learning_rate, recipe.weight_decay, device)
    precision = mixed_precision(recipe.mixed_precision)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
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
                    embeds, _ = pipe.encode_prompt(missing, device, 1, False)
                cache.update(zip(missing, embeds))
            embeds = torch.stack([cache[c] for c in batch["caption"]])
            latents = to_latents(pipe, batch["pixels"].to(device))
            noise = torch.randn_like(latents)
            timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (latents.shape[0],), device=device)
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                prediction = unet(scheduler.add_noise(latents, noise, timesteps), timesteps, embeds).sample
            v_prediction = scheduler.config.prediction_type == "v_prediction"
            target = scheduler.get_velocity(latents, noise, timesteps) if v_prediction else noise
            loss = F.mse_loss(prediction.float(), target)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            done += 1
            if done == steps:
                break
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return steps * recipe.batch_size / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Fewer steps on a smaller pool (under a minute).")
    parser.add_argument("--gpu", action="store_true", help="A model of GPU size in bf16 (see the module's doc).")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="A config override on top (repeatable).")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="--gpu: the GPU's dense bf16 peak for the MFU (default: by its name).")
    args = parser.parse_args()
    steps, n = (20, 200) if args.quick else (60, 1000)
    checkpoint_every = steps if args.gpu else (10 if args.quick else 20)

    import torch

    from photogenic.config import load_config
    from photogenic.cpu_quota import compute_threads
    from photogenic.models import build_pipeline
    from photogenic.training.data import read_rows, split_rows
    from photogenic.training.trainer import Trainer, seed_everything

    dataset = ingested_pool(n)
    cfg = load_config(Path(__file__).resolve().parents[1] / "configs" / "default.yaml", [
        f"training.pretrain.max_steps={steps}", f"training.pretrain.checkpoint_every={checkpoint_every}",
        # every step at the model's resolution and uniform timesteps, as the plain loop trains
        "training.pretrain.low_resolution=null", "training.pretrain.low_resolution_share=0",
        "training.pretrain.timestep_sampling=uniform",
        f"training.pretrain.validate_every={steps * 10}", "training.pretrain.validation_prompts=[a cat]",
        "training.pretrain.sample_steps=1", "training.pretrain.validation_batches=1",
        *(GPU_MODEL if args.gpu else []), *args.overrides])
    recipe = cfg.training.pretrain
    rows, validation = split_rows(read_rows(dataset, recipe.caption_column), recipe.validation_fraction)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")  # what accelerate picks

    seed_everything(0)
    pipe = build_pipeline(cfg.training.model)
    initial = {k: v.clone() for k, v in pipe.unet.state_dict().items()}
    params = sum(p.numel() for p in pipe.unet.parameters())
    print(f"model: U-Net {params / 1e6:.2f}M parameters, {cfg.training.model.resolution}px {cfg.training.model.space} "
          f"space; batch {recipe.batch_size}, {steps} steps, {recipe.workers} DataLoader worker(s), "
          f"{recipe.threads or compute_threads(recipe.workers)} torch thread(s); {device}"
          f"{' ' + torch.cuda.get_device_name(device) if device.type == 'cuda' else ''}, "
          f"mixed precision {recipe.mixed_precision}")

    # untimed warm-up (shard pages into the OS cache, kernels initialised), so the loop timed
    # first is not charged for what the second gets for free
    resolution = cfg.training.model.resolution
    plain_loop(pipe, dataset, rows, recipe, resolution, 2, device)
    gpu_peak(device)
    pipe.unet.load_state_dict(initial)
    plain = plain_loop(pipe, dataset, rows, recipe, resolution, steps, device)
    print(f"plain PyTorch loop: {plain:.1f} samples/s; peak RSS so far {peak_rss_mb():.0f} MB{gpu_peak(device)}")

    pipe.unet.load_state_dict(initial)  # the same starting weights for the trainer
    windows = ThroughputWindows(recipe.batch_size * recipe.grad_accum)
    trainer = Trainer(recipe, pipe, dataset.path, rows, validation, str(OUT / "train-speed-model"),
                      resolution=resolution, tracker=windows, progress=False)
    trained = trainer.train()
    print(f"trainer (accelerate, EMA, clipping, checkpoints every {checkpoint_every}): "
          f"{trained.samples_per_second:.1f} samples/s, {windows.samples_per_second():.1f} in its logged windows; "
          f"peak RSS {peak_rss_mb():.0f} MB{gpu_peak(device)}")
    if args.gpu:
        from photogenic.training.trainer import mixed_precision

        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(mixed_precision(recipe.mixed_precision))
        flops = training_flops_per_sample(pipe, recipe.batch_size, resolution, device, dtype)
        achieved = flops * windows.samples_per_second() / 1e12
        peak = peak_tflops(device, args.peak_tflops)
        print(f"U-Net forward and backward: {flops / 1e9:.1f} GFLOP a sample; trainer {achieved:.1f} TFLOP/s"
              + (f", MFU {achieved / peak:.1%} of {peak:.0f} TFLOP/s (dense bf16)" if peak else
                 " (MFU: pass --peak-tflops for this GPU)"))
        print(MOSAICML_SD2)
        result("trainer_vs_plain_loop_gpu", windows.samples_per_second() / plain, ">=", 0.9)
    else:
        result("trainer_vs_plain_loop", trained.samples_per_second / plain, ">=", 0.9)
    print(f"peak memory (RSS, whole process): {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    run_benchmark(main)
