"""Building, loading and saving text-to-image models as diffusers pipelines.

A model is always a diffusers pipeline object: a ``StableDiffusionPipeline`` (one text encoder;
pixel space with ``PixelSpace`` as its autoencoder, or latent space with an ``AutoencoderKL``) or
a ``StableDiffusionXLPipeline`` (two text encoders, pooled embeddings, size/crop time ids) loaded
from a checkpoint. Training reads the prompt embeddings through the pipeline's own
``encode_prompt``, so training and sampling condition the U-Net the same way, and saving is the
pipeline's ``save_pretrained``: a folder that ``DiffusionPipeline.from_pretrained`` loads.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import torch

from photogenic.errors import ConfigError
from photogenic.models import pixel  # noqa: F401  (diffusers finds PixelSpace by its module once imported)
from photogenic.models.pixel import PixelSpace
from photogenic.models.text import hidden_size, load_text_encoder

log = logging.getLogger(__name__)

#: pipeline classes the trainer knows how to condition (class name -> layout)
LAYOUTS = {"StableDiffusionPipeline": "sd", "StableDiffusionXLPipeline": "sdxl"}


def layout(pipe) -> str:
    name = type(pipe).__name__
    if name not in LAYOUTS:
        raise ConfigError(
            f"training.model.pretrained loads a {name}; the trainer handles {', '.join(LAYOUTS)} "
            "(Stable Diffusion 1.x/2.x and SDXL layouts)."
        )
    return LAYOUTS[name]


def is_pixel_space(pipe) -> bool:
    return isinstance(pipe.vae, PixelSpace)


def latent_distribution(pipe, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The latent distribution of a batch of images in [-1, 1], scaled to unit variance: the
    autoencoder's (mean, std), or (the images, None) in pixel space, where there is nothing to draw."""
    if is_pixel_space(pipe):
        return pixels, None
    with torch.no_grad():
        dist = pipe.vae.encode(pixels.to(pipe.vae.dtype)).latent_dist
    scale = getattr(pipe.vae.config, "scaling_factor", 1.0)
    return dist.mean.float() * scale, dist.std.float() * scale


def draw_latents(mean: torch.Tensor, std: torch.Tensor | None, generator: torch.Generator | None = None) -> torch.Tensor:
    """One draw of a latent distribution, its noise from ``generator`` on the CPU (a seed then
    gives the same draw on any device); the mean itself where there is no spread (pixel space)."""
    if std is None:
        return mean
    noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device="cpu").to(mean.device)
    return mean + std * noise


def to_latents(pipe, pixels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """What the U-Net denoises for a batch of images in [-1, 1]: the images themselves in pixel
    space, else a draw of the autoencoder's latent distribution, scaled to unit variance."""
    return draw_latents(*latent_distribution(pipe, pixels), generator)


def build_pipeline(model_cfg) -> Any:
    """A new model from ``training.model``: random U-Net, frozen text encoder, the autoencoder."""
    from diffusers import StableDiffusionPipeline

    encoder, tokenizer = load_text_encoder(
        model_cfg.text_encoder.kind, model_cfg.text_encoder.path, model_cfg.text_encoder.max_length
    )
    vae = _autoencoder(model_cfg)
    unet = _unet(model_cfg, in_channels=vae.config.latent_channels, cross_attention_dim=hidden_size(encoder),
                 sample_size=model_cfg.resolution // (2 ** (len(vae.config.block_out_channels) - 1)))
    return StableDiffusionPipeline(
        vae=vae, text_encoder=encoder, tokenizer=tokenizer, unet=unet, scheduler=_scheduler(model_cfg),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )


def _unet(model_cfg, in_channels: int, cross_attention_dim: int, sample_size: int):
    from diffusers import UNet2DConditionModel

    cfg = model_cfg.unet
    if len(cfg.down_block_types) != len(cfg.block_out_channels) or len(cfg.up_block_types) != len(cfg.block_out_channels):
        raise ConfigError(
            "training.model.unet: down_block_types, up_block_types and block_out_channels must have the same length "
            f"(got {len(cfg.down_block_types)}, {len(cfg.up_block_types)}, {len(cfg.block_out_channels)})."
        )
    return UNet2DConditionModel(
        sample_size=sample_size, in_channels=in_channels, out_channels=in_channels,
        down_block_types=tuple(cfg.down_block_types), up_block_types=tuple(cfg.up_block_types),
        block_out_channels=tuple(cfg.block_out_channels), layers_per_block=cfg.layers_per_block,
        cross_attention_dim=cross_attention_dim, attention_head_dim=cfg.attention_head_dim,
        norm_num_groups=cfg.norm_num_groups, transformer_layers_per_block=cfg.transformer_layers_per_block,
    )


def _autoencoder(model_cfg):
    if model_cfg.space == "pixel":
        return PixelSpace()
    cfg = model_cfg.autoencoder
    from diffusers import AutoencoderKL

    if cfg.path:
        try:
            vae = AutoencoderKL.from_pretrained(cfg.path, subfolder=cfg.subfolder)
        except OSError as exc:
            raise ConfigError(
                f"training.model.autoencoder.path {cfg.path!r} could not be loaded as an AutoencoderKL ({exc}). "
                "Set it to a local folder or a Hugging Face id reachable from this machine, or leave it empty to "
                "build one from training.model.autoencoder."
            ) from None
    else:
        log.warning("latent space with an autoencoder built from config (random weights): useful for tests, not "
                    "for real images; set training.model.autoencoder.path to a trained AutoencoderKL")
        n = len(cfg.block_out_channels)
        vae = AutoencoderKL(
            in_channels=3, out_channels=3, latent_channels=cfg.latent_channels,
            block_out_channels=tuple(cfg.block_out_channels), layers_per_block=1,
            down_block_types=("DownEncoderBlock2D",) * n, up_block_types=("UpDecoderBlock2D",) * n,
            norm_num_groups=cfg.norm_num_groups, sample_size=model_cfg.resolution,
            scaling_factor=cfg.scaling_factor,
        )
    vae.requires_grad_(False)
    vae.eval()
    return vae


def _scheduler(model_cfg):
    """The sampler saved with the model; training derives its DDPM noise schedule from its config."""
    from diffusers import DPMSolverMultistepScheduler

    return DPMSolverMultistepScheduler(
        num_train_timesteps=model_cfg.num_train_timesteps, beta_schedule=model_cfg.beta_schedule,
        prediction_type=model_cfg.prediction_type, steps_offset=1,
    )


def load_pipeline(path: str, config_key: str = "training.model.pretrained", dtype: torch.dtype | None = None):
    """A saved or published diffusers pipeline (hub id or local folder), with a clear error if
    it cannot be found. Models this project saves need ``photogenic.models`` imported, which this
    module is."""
    from diffusers import DiffusionPipeline

    if os.path.sep in path or path.startswith("."):
        if not os.path.isfile(os.path.join(path, "model_index.json")):
            raise ConfigError(
                f"{config_key} is {path!r}, which is not a diffusers pipeline folder (no model_index.json there). "
                "Point it at a folder a training stage saved, or at a Hugging Face id."
            )
    try:
        kwargs = {"torch_dtype": dtype} if dtype is not None else {}
        return DiffusionPipeline.from_pretrained(path, **kwargs)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"{config_key} is {path!r}, which could not be loaded as a diffusers pipeline ({exc}). Set it to a local "
            "pipeline folder or a Hugging Face id available offline (HF_HUB_OFFLINE is honoured)."
        ) from None


def save_pipeline(pipe, folder: str) -> str:
    """Write ``pipe`` as a diffusers folder with safetensors, atomically: into a temporary folder
    beside ``folder``, then renamed over it, so a reader never sees half a model."""
    import shutil
    import uuid

    parent = os.path.dirname(os.path.abspath(folder))
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".{os.path.basename(folder)}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        pipe.save_pretrained(tmp, safe_serialization=True)
        if os.path.exists(folder):
            old = f"{tmp}.old"
            os.replace(folder, old)
            os.replace(tmp, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder
