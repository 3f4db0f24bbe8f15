"""Diffusion upscalers from diffusers, conditioned on each row's training caption.

Two pipelines: ``StableDiffusionUpscalePipeline`` (the x4 upscaler: the low-resolution image is
concatenated to the latents) and ``StableDiffusionLatentUpscalePipeline`` (the x2 latent
upscaler). The native factor is read from the loaded pipeline, not assumed; a row that needs
more than one native step runs through the pipeline again ("passes"). Every image gets its own
``torch.Generator`` seeded from its sample_id, so its result does not depend on its batch.

The pipelines need sides that their VAE and U-Net can halve cleanly, so each input is padded
(edge-reflected) up to that multiple and the output cropped back to exactly ``factor ×`` the
input size.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np
from PIL import Image

from photogenic.config import DiffusionUpsampleConfig
from photogenic.errors import ConfigError
from photogenic.paths import is_url, under_root

log = logging.getLogger(__name__)

KEY = "upsample.diffusion.checkpoint"


@dataclass
class Job:
    image: Image.Image
    prompt: str
    seed: int


def resolve_checkpoint(settings: DiffusionUpsampleConfig, data_root: str) -> str:
    """A local folder (absolute, or relative to data.root) or a hub id; a configured path that
    does not exist is a ConfigError naming the key, before any hub client is involved."""
    checkpoint = settings.checkpoint
    if not checkpoint:
        raise ConfigError(
            f"upsample.backend is 'diffusion' but {KEY} is not set. Set it to a diffusers upscale "
            "pipeline folder (model_index.json inside) or hub id, e.g. "
            f"--set {KEY}=stabilityai/stable-diffusion-x4-upscaler, or use upsample.backend=lanczos."
        )
    if is_url(checkpoint):
        return checkpoint
    local = checkpoint if os.path.isabs(checkpoint) else under_root(data_root, checkpoint, KEY)
    if os.path.isdir(local):
        if not os.path.exists(os.path.join(local, "model_index.json")):
            raise ConfigError(f"{KEY} = {checkpoint!r} is a folder ({local}) without model_index.json: "
                              "not a diffusers pipeline saved with save_pretrained.")
        return local
    if os.path.isabs(checkpoint) or checkpoint.startswith(".") or checkpoint.count("/") != 1:
        raise ConfigError(f"{KEY} = {checkpoint!r}: no such folder ({local}). Point it at a diffusers "
                          "upscale pipeline folder, or at a hub id (owner/name) that is in the local cache.")
    return checkpoint  # owner/name: a hub id


@dataclass(frozen=True)
class UpscalerInfo:
    name: str
    #: the factor one pass multiplies the sides by
    native_scale: int


def describe(settings: DiffusionUpsampleConfig, data_root: str) -> UpscalerInfo:
    """The upscaler's name and native factor from its configs alone, no weights: what the stage
    needs to batch its rows before the model loads in its workers, and a checkpoint that cannot
    be read is a ConfigError before any image is made."""
    from diffusers import AutoencoderKL

    source, cls = resolve_checkpoint(settings, data_root), _pipeline_class(settings)
    try:
        cls.load_config(source)
        vae = AutoencoderKL.load_config(source, subfolder="vae")
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise _unloadable(settings, cls, exc) from None
    # as the pipelines compute it (vae_scale_factor); the latent upscaler doubles its latents
    native = 2 ** (len(vae["block_out_channels"]) - 1) if settings.pipeline == "x4" else 2
    return UpscalerInfo(f"diffusion-{settings.pipeline}", native)


def _pipeline_class(settings: DiffusionUpsampleConfig):
    from diffusers import StableDiffusionLatentUpscalePipeline, StableDiffusionUpscalePipeline

    return StableDiffusionUpscalePipeline if settings.pipeline == "x4" else StableDiffusionLatentUpscalePipeline


def _unloadable(settings: DiffusionUpsampleConfig, cls: type, exc: Exception) -> ConfigError:
    return ConfigError(
        f"{KEY} = {settings.checkpoint!r} could not be loaded as a {cls.__name__} "
        f"(upsample.diffusion.pipeline={settings.pipeline!r}): {str(exc).splitlines()[0] if str(exc) else exc!r}. "
        "Set it to a local pipeline folder, or download the checkpoint into the hub cache first.")


class DiffusionUpscaler:
    def __init__(self, settings: DiffusionUpsampleConfig, data_root: str):
        import torch

        self.settings = settings
        source, cls = resolve_checkpoint(settings, data_root), _pipeline_class(settings)
        self.device = settings.device if settings.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = getattr(torch, settings.dtype)
        try:
            self.pipe = cls.from_pretrained(source, dtype=dtype)
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise _unloadable(settings, cls, exc) from None
        self.pipe.to(self.device)
        self.pipe.set_progress_bar_config(disable=True)
        # the x4 pipeline's VAE decodes to its factor times the input; the latent upscaler's VAE
        # factor is SD's 8, and it doubles the latents
        self.native_scale = int(self.pipe.vae_scale_factor) if settings.pipeline == "x4" else 2
        self.multiple = self._multiple()
        self.name = f"diffusion-{settings.pipeline}"

    def _multiple(self) -> int:
        """Side multiple the pipeline needs: the VAE's factor (latent pipeline: x8) times the
        U-Net's own downsampling."""
        unet_factor = 2 ** (len(self.pipe.unet.config.down_block_types) - 1)
        if self.settings.pipeline == "x4":
            return max(unet_factor, int(self.pipe.vae_scale_factor))
        return int(self.pipe.vae_scale_factor) * unet_factor

    def upscale(self, jobs: list[Job], passes: int) -> list[Image.Image]:
        """Upscale same-size images by native_scale**passes, one batch per call."""
        images = [job.image for job in jobs]
        for index in range(passes):
            images = self._one_pass(images, jobs, index)
        return images

    def _one_pass(self, images: list[Image.Image], jobs: list[Job], index: int) -> list[Image.Image]:
        import torch

        width, height = images[0].size
        padded = [_pad(im, self.multiple) for im in images]
        generators = [torch.Generator(device="cpu").manual_seed((job.seed + index) % 2**63) for job in jobs]
        kwargs = dict(prompt=[job.prompt for job in jobs], image=padded, generator=generators,
                      num_inference_steps=self.settings.num_inference_steps,
                      guidance_scale=self.settings.guidance_scale, output_type="pil")
        if self.settings.pipeline == "x4":
            kwargs["noise_level"] = self.settings.noise_level
        with torch.inference_mode():
            out = self.pipe(**kwargs).images
        s = self.native_scale
        return [im.crop((0, 0, width * s, height * s)) for im in out]


def _pad(image: Image.Image, multiple: int) -> Image.Image:
    """Reflect-pad right and bottom to a multiple of ``multiple`` (no resampling of the input)."""
    w, h = image.size
    pw, ph = -w % multiple, -h % multiple
    if not pw and not ph:
        return image
    pixels = np.pad(np.asarray(image), ((0, ph), (0, pw), (0, 0)), mode="symmetric")
    return Image.fromarray(pixels, "RGB")
