"""The training loop shared by every recipe: accelerate, AdamW, EMA, checkpoints, validation.

One optimizer step = ``grad_accum`` micro-batches of ``batch_size`` on each process. All the
randomness of a micro-batch (timesteps, noise, caption dropout) comes from a generator seeded by
(seed, process, micro-batch index), and the data order from ``ResumableSampler``; together with
the checkpointed weights, EMA, optimizer and LR scheduler this makes a resumed run take the
same steps as an uninterrupted one.
"""

from __future__ import annotations

import copy
import logging
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from photogenic.cpu_quota import compute_threads
from photogenic.errors import ConfigError
from photogenic.models import save_pipeline
from photogenic.training import checkpoint as ckpt
from photogenic.training.caches import text_store
from photogenic.training.conditioning import Conditioner, text_fingerprint
from photogenic.training.data import CaptionedImages, ResumableSampler, collate
from photogenic.training.diffusion import diffusion_loss, loss_weights, sample_noise, sample_timesteps, target_for
from photogenic.training.distributed import accelerator
from photogenic.training.latents import Latents
from photogenic.training.samples import draw_samples, grid, sample_quality
from photogenic.training.speedups import compiled, prepare_unet
from photogenic.training.tracking import NullTracker

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    model_dir: str
    steps: int
    seconds: float
    #: training throughput: validation (sampling, scoring) time excluded
    samples_per_second: float
    stopped_early: bool
    best_step: int | None
    best_metric: float | None
    validations: list[dict[str, Any]] = field(default_factory=list)
    grids: list[str] = field(default_factory=list)
    resumed_from: int | None = None
    validation_seconds: float = 0.0
    #: training processes (DDP); each step took batch_size x grad_accum samples in each
    processes: int = 1
    #: seconds from the start of the process to the end of this run's first step (imports, model
    #: and data set-up, tracking, the first batch): what a user waits before training is under way
    seconds_to_first_step: float | None = None
    #: images the autoencoder encoded in this run, and batch items read from the latent cache
    latents_encoded: int = 0
    latents_from_cache: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


def mixed_precision(setting: str) -> str:
    """'auto' -> bf16 on a GPU that has it, fp16 on one that does not, off on CPU."""
    if setting != "auto":
        return setting
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "no"


def adamw(params, learning_rate: float, weight_decay: float, device: torch.device) -> torch.optim.AdamW:
    """AdamW with torch's fused kernel where the device has one (CPU and CUDA): on the embedded
    model's 246 tensors a step takes 1.6 ms instead of 8 ms on 2 CPU cores, the same update."""
    params = list(params)
    fused = device.type in ("cpu", "cuda") and all(p.is_floating_point() for p in params)
    return torch.optim.AdamW(params, lr=learning_rate, weight_decay=weight_decay, fused=fused or None)


class Trainer:
    """Trains ``pipe.unet`` on rows of a photogenic Dataset with a ``TrainStageConfig``."""

    def __init__(self, cfg, pipe, dataset_path: str, train_rows: list[dict], validation_rows: list[dict],
                 output_dir: str, resolution: int, tracker=None, progress: bool = True):
        self.cfg = cfg
        self.pipe = pipe
        self.output_dir = output_dir
        self.work_dir = f"{output_dir}.work"
        self.resolution = resolution
        self.tracker = tracker or NullTracker()
        self.progress = progress
        self.accelerator = accelerator(mixed_precision(cfg.mixed_precision), cfg.grad_accum)
        self.device = self.accelerator.device
        if self.accelerator.num_processes > 1:
            log.info("process %d of %d (%s, %s)", self.accelerator.process_index, self.accelerator.num_processes,
                     self.accelerator.distributed_type, self.device)
        # the latent cache of each resolution trained at (progressive resolution has two)
        self.latents = {res: Latents(pipe, self.device, dataset_path, res, cfg.latent_cache, cfg.random_flip)
                        for res in dict.fromkeys(r for r in (resolution, cfg.low_resolution) if r is not None)}
        keyed = self.latents[resolution].keyed
        cache = cfg.decoded_cache_mb
        self.train_data = CaptionedImages(dataset_path, train_rows, resolution, cache, keyed=keyed)
        # progressive resolution: the first low_resolution_share of the steps read the same rows smaller
        self.low_data = None
        if cfg.low_resolution is not None:  # the config sets it only with low_resolution_share
            self._check_resolution(pipe, cfg.low_resolution)
            self.low_data = CaptionedImages(dataset_path, train_rows, cfg.low_resolution, cache, keyed=keyed)
        self.validation_data = (CaptionedImages(dataset_path, validation_rows, resolution, cache, keyed=keyed)
                                if validation_rows else None)

        from diffusers import DDPMScheduler

        self.noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
        pipe.to(self.device)
        for name in ("vae", "text_encoder", "text_encoder_2"):
            module = getattr(pipe, name, None)
            if isinstance(module, torch.nn.Module):
                module.requires_grad_(False)
        store = text_store(dataset_path, text_fingerprint(pipe)) if cfg.text_embedding_cache else None
        self.conditioner = Conditioner(pipe, resolution, self.device, store=store)

    # -- set-up ---------------------------------------------------------------------------------
    @staticmethod
    def _check_resolution(pipe, resolution: int) -> None:
        divisor = int(pipe.vae_scale_factor) * 2 ** (len(pipe.unet.config.block_out_channels) - 1)
        if resolution % divisor:
            raise ConfigError(f"low_resolution {resolution} must be a multiple of {divisor}: the autoencoder divides "
                              f"the side by {int(pipe.vae_scale_factor)} and every U-Net level below the first halves it.")

    def _phase_data(self, step: int) -> CaptionedImages:
        """The images step ``step`` (0-based) trains on: low resolution first, if configured."""
        return self.low_data if self.low_data is not None and step < self.cfg.low_resolution_steps else self.train_data

    def _build_optimisation(self):
        from diffusers.optimization import get_scheduler

        cfg = self.cfg
        unet = self.pipe.unet
        unet.train()
        prepare_unet(unet, cfg)  # attention kernels and memory format, before the optimizer holds the weights
        optimizer = adamw(unet.parameters(), cfg.learning_rate, cfg.weight_decay, self.device)
        # stepped by hand once per optimizer step (not prepared: accelerate would step it once per process)
        lr_scheduler = get_scheduler(cfg.lr_schedule, optimizer, num_warmup_steps=cfg.warmup_steps,
                                     num_training_steps=cfg.max_steps)
        ema = None
        if cfg.ema_decay is not None:
            from diffusers.training_utils import EMAModel

            # foreach: one kernel over all tensors instead of a Python loop (half the time per step)
            ema = EMAModel(unet.parameters(), decay=cfg.ema_decay, model_cls=type(unet), model_config=unet.config,
                           foreach=True)
        unet, optimizer = self.accelerator.prepare(unet, optimizer)
        # what the training steps call: the prepared U-Net, compiled where configured (checkpoints,
        # EMA and validation keep using the module itself)
        forward = compiled(unet, cfg)
        return unet, forward, optimizer, lr_scheduler, ema

    def _loader(self, data: CaptionedImages, start: int) -> DataLoader:
        data.skip = self.latents[data.resolution].cached_keys()  # before the workers copy it
        sampler = ResumableSampler(len(data), self.cfg.seed, start=start,
                                   rank=self.accelerator.process_index, world=self.accelerator.num_processes)
        return DataLoader(data, batch_size=self.cfg.batch_size, sampler=sampler, collate_fn=collate,
                          num_workers=self.cfg.workers, persistent_workers=self.cfg.workers > 0,
                          prefetch_factor=4 if self.cfg.workers > 0 else None)

    # -- one micro-batch ------------------------------------------------------------------------
    def loss(self, unet, batch: dict, generator: torch.Generator, train: bool = True) -> torch.Tensor:
        cfg = self.cfg
        n = len(batch["caption"])
        flip = torch.rand(n, generator=generator) < 0.5 if train and cfg.random_flip else None
        latents = self.latents[batch["size"]](batch, generator, flip)
        captions = list(batch["caption"])
        if train and cfg.caption_dropout > 0:
            drop = torch.rand(n, generator=generator) < cfg.caption_dropout
            captions = ["" if d else c for c, d in zip(captions, drop.tolist())]
        noise = sample_noise(latents, cfg.noise_offset if train else 0.0, generator)
        # validation stays uniform, so its loss means the same whatever the training draws
        timesteps = sample_timesteps(n, self.noise_scheduler.config.num_train_timesteps, generator,
                                     cfg.timestep_sampling if train else "uniform", cfg.logit_mean, cfg.logit_std)
        timesteps = timesteps.to(self.device)
        noisy = self.noise_scheduler.add_noise(latents, noise, timesteps)
        if cfg.channels_last:
            noisy = noisy.contiguous(memory_format=torch.channels_last)
        with self.accelerator.autocast():
            prediction = unet(noisy, timesteps, **self.conditioner(captions, batch["size"])).sample
        target = target_for(self.noise_scheduler, latents, noise, timesteps)
        return diffusion_loss(prediction, target, loss_weights(self.noise_scheduler, timesteps, cfg.snr_gamma))

    def _flush_caches(self) -> None:
        """Write the latents and caption embeddings this process encoded since the last flush."""
        for latents in self.latents.values():
            latents.flush()
        self.conditioner.flush()

    def _generator(self, micro_step: int) -> torch.Generator:
        return torch.Generator("cpu").manual_seed(
            (self.cfg.seed * 1_000_003 + self.accelerator.process_index * 7919 + micro_step) % 2**63)

    # -- the loop -------------------------------------------------------------------------------
    def train(self, resume: bool = False) -> TrainResult:
        from tqdm.auto import tqdm

        cfg = self.cfg
        acc = self.accelerator
        seed_everything(cfg.seed + acc.process_index)
        # unset: the CPUs this process really has (cgroup quota, affinity) less the DataLoader
        # workers, not torch's default of one thread per core of the node (photogenic.cpu_quota)
        torch.set_num_threads(cfg.threads or compute_threads(cfg.workers))
        unet, forward, optimizer, lr_scheduler, ema = self._build_optimisation()
        checkpoints = os.path.join(self.work_dir, "checkpoints")
        state = {"step": 0, "best_metric": None, "best_step": None, "since_best": 0, "validations": [], "grids": []}
        resumed_from = None
        if acc.is_main_process:
            ckpt.remove_stale_temporaries(checkpoints)
        if resume:
            found = ckpt.load_latest(checkpoints)
            if found is None:
                log.info("no checkpoint in %s: starting from step 0", checkpoints)
            else:
                state = self._restore(found.state, unet, optimizer, lr_scheduler, ema)
                resumed_from = found.step
                log.info("resumed from %s (step %d)", found.path, found.step)
        elif acc.is_main_process and os.path.isdir(self.work_dir):
            shutil.rmtree(self.work_dir)  # a fresh run never mixes with an older run's checkpoints
        acc.wait_for_everyone()

        per_step = cfg.batch_size * cfg.grad_accum * acc.num_processes
        step = state["step"]
        data = self._phase_data(step)
        loader = iter(self._loader(data, start=step * per_step))
        micro = step * cfg.grad_accum
        started = time.perf_counter()
        window_start, window_samples = started, 0
        stopped_early = False
        validation_seconds = 0.0
        first_step = None
        bar = tqdm(total=cfg.max_steps, initial=step, desc="train", disable=not (self.progress and acc.is_main_process))
        while step < cfg.max_steps and not stopped_early:
            if self._phase_data(step) is not data:  # low resolution done: the same sample sequence, full size
                data = self._phase_data(step)
                loader = iter(self._loader(data, start=step * per_step))
                log.info("step %d: from %d px to %d px", step, cfg.low_resolution, self.resolution)
            for _ in range(cfg.grad_accum):
                batch = next(loader)
                with acc.accumulate(unet):
                    loss = self.loss(forward, batch, self._generator(micro))
                    acc.backward(loss)
                    if acc.sync_gradients and cfg.max_grad_norm is not None:
                        acc.clip_grad_norm_(unet.parameters(), cfg.max_grad_norm)
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
                micro += 1
                window_samples += len(batch["caption"]) * acc.num_processes
            lr_scheduler.step()
            if ema is not None:
                ema.step(acc.unwrap_model(unet).parameters())
            step += 1
            state["step"] = step
            if first_step is None:
                first_step = time.time() - process_started()
                log.info("first step done %.1f s after the process started", first_step)
                if acc.is_main_process:  # (the first metric: a tracker that starts lazily starts now)
                    self.tracker.log_metrics({"seconds_to_first_step": first_step}, step)
            bar.update(1)
            if step % cfg.log_every == 0 or step == cfg.max_steps:
                now = time.perf_counter()
                throughput = window_samples / max(now - window_start, 1e-9)
                window_start, window_samples = now, 0
                if acc.is_main_process:
                    self.tracker.log_metrics({"loss": loss.item(), "lr": lr_scheduler.get_last_lr()[0],
                                              "samples_per_second": throughput}, step)
                bar.set_postfix(loss=f"{loss.item():.4f}")
            if step % cfg.validate_every == 0 or step == cfg.max_steps:
                validation_started = time.perf_counter()
                stopped_early = self._validate(unet, ema, step, state)
                validation_seconds += time.perf_counter() - validation_started
                window_start = time.perf_counter()  # throughput measures training only
            if step % cfg.checkpoint_every == 0 or step == cfg.max_steps or stopped_early:
                self._flush_caches()  # every process writes what it encoded
                if acc.is_main_process:
                    ckpt.save_checkpoint(checkpoints, step, self._state(state, unet, optimizer, lr_scheduler, ema),
                                         keep=cfg.keep_checkpoints)
                acc.wait_for_everyone()
        bar.close()
        seconds = time.perf_counter() - started
        trained = (step - (resumed_from or 0)) * per_step
        if acc.is_main_process:
            self._save_final(unet, ema, state)
        acc.wait_for_everyone()
        return TrainResult(
            model_dir=self.output_dir, steps=step, seconds=seconds, validation_seconds=validation_seconds,
            samples_per_second=trained / max(seconds - validation_seconds, 1e-9),
            stopped_early=stopped_early, best_step=state["best_step"], best_metric=state["best_metric"],
            validations=state["validations"], grids=state["grids"], resumed_from=resumed_from,
            processes=acc.num_processes, seconds_to_first_step=first_step,
            latents_encoded=sum(latents.encoded for latents in self.latents.values()),
            latents_from_cache=sum(latents.hits for latents in self.latents.values()))

    # -- validation -----------------------------------------------------------------------------
    def _validate(self, unet, ema, step: int, state: dict) -> bool:
        """Validation on the main process; returns True, in every process, when early stopping
        says stop (a decision only the main process could take: the others would go on alone and
        wait for it forever at their next collective call)."""
        acc = self.accelerator
        stop = self._validate_main(unet, ema, step, state) if acc.is_main_process else False
        if acc.num_processes > 1:
            from accelerate.utils import broadcast_object_list

            stop = broadcast_object_list([stop], from_process=0)[0]
        return stop

    def _validate_main(self, unet, ema, step: int, state: dict) -> bool:
        """Validation loss and sample quality with the weights that would be saved (EMA's);
        keeps the best model; returns True when early stopping says stop."""
        acc = self.accelerator
        cfg = self.cfg
        model = acc.unwrap_model(unet)
        if ema is not None:
            ema.store(model.parameters())
            ema.copy_to(model.parameters())
        model.eval()
        metrics: dict[str, float] = {}
        try:
            with torch.no_grad():
                if self.validation_data is not None:
                    metrics["val_loss"] = self._validation_loss(model)
                images = draw_samples(self.pipe, cfg.validation_prompts, cfg.sample_steps, cfg.guidance_scale)
            metrics["sample_quality"] = sample_quality(images)
            path = os.path.join(self.work_dir, "samples", f"step-{step:08d}.png")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            grid(images).save(path)
            state["grids"].append(path)
            self.tracker.log_image(path, "samples")
            metric_name = cfg.early_stopping.metric if cfg.early_stopping.metric in metrics else "sample_quality"
            value = metrics[metric_name]
            best = state["best_metric"]
            if best is None or (value < best if metric_name == "val_loss" else value > best):
                state.update(best_metric=value, best_step=step, since_best=0)
                save_pipeline(self.pipe, os.path.join(self.work_dir, "best"))
            else:
                state["since_best"] += 1
        finally:
            if ema is not None:
                ema.restore(model.parameters())
            model.train()
        metrics["best_" + metric_name] = state["best_metric"]
        self.tracker.log_metrics(metrics, step)
        state["validations"].append({"step": step, **metrics})
        log.info("validation at step %d: %s", step, ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
        patience = cfg.early_stopping.patience
        return patience is not None and state["since_best"] >= patience

    def _validation_loss(self, model) -> float:
        """Mean loss on the first held-out batches, with fixed noise and timesteps, so values
        from different steps compare the model and nothing else."""
        self.validation_data.skip = self.latents[self.resolution].cached_keys()
        loader = DataLoader(self.validation_data, batch_size=self.cfg.batch_size, shuffle=False, collate_fn=collate,
                            num_workers=0)
        losses = []
        for index, batch in enumerate(loader):
            if index >= self.cfg.validation_batches:
                break
            generator = torch.Generator("cpu").manual_seed(10_000 + index)
            losses.append(self.loss(model, batch, generator, train=False).item())
        return float(np.mean(losses))

    # -- checkpoints and the saved model --------------------------------------------------------
    def _state(self, state, unet, optimizer, lr_scheduler, ema) -> dict[str, Any]:
        return {
            "progress": copy.deepcopy(state),
            "unet": self.accelerator.unwrap_model(unet).state_dict(),
            "ema": ema.state_dict() if ema is not None else None,
            "optimizer": optimizer.state_dict(),
            "lr_scheduler": lr_scheduler.state_dict(),
            "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
            "data_position": state["step"] * self.cfg.batch_size * self.cfg.grad_accum * self.accelerator.num_processes,
        }

    def _restore(self, saved, unet, optimizer, lr_scheduler, ema) -> dict[str, Any]:
        self.accelerator.unwrap_model(unet).load_state_dict(saved["unet"])
        optimizer.load_state_dict(saved["optimizer"])
        lr_scheduler.load_state_dict(saved["lr_scheduler"])
        if ema is not None and saved["ema"] is not None:
            ema.load_state_dict(saved["ema"])
        rng = saved["rng"]
        torch.set_rng_state(rng["torch"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])
        if rng["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        return saved["progress"]

    def _save_final(self, unet, ema, state) -> None:
        """The model the stage hands on: the best validated one, else the last weights (EMA's)."""
        best = os.path.join(self.work_dir, "best")
        if state["best_step"] is not None and os.path.isdir(best):
            tmp = f"{self.output_dir}.tmp-copy"
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(best, tmp)
            if os.path.exists(self.output_dir):
                shutil.rmtree(self.output_dir)
            os.replace(tmp, self.output_dir)
            return
        model = self.accelerator.unwrap_model(unet)
        if ema is not None:
            ema.store(model.parameters())
            ema.copy_to(model.parameters())
        save_pipeline(self.pipe, self.output_dir)
        if ema is not None:
            ema.restore(model.parameters())


def process_started() -> float:
    """When this process started (seconds since the epoch)."""
    import psutil  # accelerate's dependency

    return psutil.Process().create_time()


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (a new model's initial weights come from torch's RNG)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
