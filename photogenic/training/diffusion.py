"""The diffusion objective: noise (with offset), targets, and per-sample loss weights.

Follows diffusers' train_text_to_image.py, written as small pure functions so each can be
checked numerically on its own.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def sample_noise(latents: torch.Tensor, noise_offset: float, generator: torch.Generator) -> torch.Tensor:
    """Gaussian noise plus ``noise_offset`` times a per-sample, per-channel constant.

    The offset (Guttenberg 2023; Emu: 0.1 when quality-tuning) lets the model shift an image's
    mean colour, which plain noise almost never asks of it, so it can make dark and bright
    images instead of greying everything towards the middle.
    """
    noise = torch.randn(latents.shape, generator=generator, dtype=latents.dtype, device="cpu")
    if noise_offset:
        b, c = latents.shape[:2]
        noise = noise + noise_offset * torch.randn((b, c, 1, 1), generator=generator, dtype=latents.dtype, device="cpu")
    return noise.to(latents.device)


def sample_timesteps(n: int, num_train_timesteps: int, generator: torch.Generator, sampling: str = "uniform",
                     logit_mean: float = 0.0, logit_std: float = 1.0) -> torch.Tensor:
    """Training timesteps: uniform over the schedule, or logit-normal (Esser et al. 2024, SD3).

    Logit-normal draws ``t / T = sigmoid(N(logit_mean, logit_std²))``, which puts most draws in
    the middle of the schedule, where the noise is neither nearly gone (the model only has to
    sharpen) nor nearly total (it can only guess the mean): the layout and shapes a caption
    names are decided there, so a short run spends its updates on them.
    """
    if sampling == "uniform":
        return torch.randint(0, num_train_timesteps, (n,), generator=generator)
    if sampling == "logit_normal":
        u = torch.sigmoid(logit_mean + logit_std * torch.randn(n, generator=generator))
        return (u * num_train_timesteps).long().clamp(0, num_train_timesteps - 1)
    raise ValueError(f"unknown timestep sampling {sampling!r}")


def target_for(scheduler, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
    if scheduler.config.prediction_type == "epsilon":
        return noise
    if scheduler.config.prediction_type == "v_prediction":
        return scheduler.get_velocity(latents, noise, timesteps)
    raise ValueError(f"unsupported prediction type {scheduler.config.prediction_type!r}")


def snr(scheduler, timesteps: torch.Tensor) -> torch.Tensor:
    alphas_cumprod = scheduler.alphas_cumprod.to(timesteps.device)[timesteps].float()
    return alphas_cumprod / (1.0 - alphas_cumprod)


def loss_weights(scheduler, timesteps: torch.Tensor, snr_gamma: float | None) -> torch.Tensor | None:
    """Min-SNR-γ weights (Hang et al. 2023), or None for a plain mean. For ε-prediction the
    weight is min(SNR, γ)/SNR; for v-prediction min(SNR, γ)/(SNR + 1)."""
    if snr_gamma is None:
        return None
    ratio = snr(scheduler, timesteps)
    clipped = torch.minimum(ratio, torch.full_like(ratio, snr_gamma))
    if scheduler.config.prediction_type == "v_prediction":
        return clipped / (ratio + 1)
    return clipped / ratio.clamp(min=1e-8)


def diffusion_loss(prediction: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    if weights is None:
        return F.mse_loss(prediction.float(), target.float())
    per_sample = F.mse_loss(prediction.float(), target.float(), reduction="none").mean(dim=list(range(1, prediction.ndim)))
    return (per_sample * weights).mean()
