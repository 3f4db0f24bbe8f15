"""The pixel-space stand-in for an autoencoder, so a pixel-space model is a plain
``StableDiffusionPipeline`` folder.

diffusers' text-to-image pipelines decode latents with ``pipe.vae``; a model trained directly
on pixels has no autoencoder. ``PixelSpace`` is the identity in that seat: ``encode`` returns the
image as the latent (a degenerate Gaussian, so ``latent_dist.sample()`` works), ``decode`` returns
the latent as the image, and its config makes the pipeline's derived numbers right
(``vae_scale_factor`` = 2 ** (len(block_out_channels) - 1) = 1, ``scaling_factor`` = 1).

``model_index.json`` names it as ``["photogenic.models.pixel", "PixelSpace"]``; diffusers loads a
component from a module only once it is imported, so import ``photogenic.models`` (or call
``photogenic.models.load_pipeline``) before ``DiffusionPipeline.from_pretrained``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin


@dataclass
class _PointDistribution:
    """A distribution with all its mass on ``mean``: what ``encode`` of an identity returns."""

    mean: torch.Tensor

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.mean

    def mode(self) -> torch.Tensor:
        return self.mean


@dataclass
class _EncoderOutput:
    latent_dist: _PointDistribution


@dataclass
class _DecoderOutput:
    sample: torch.Tensor


class PixelSpace(ModelMixin, ConfigMixin):
    """Identity autoencoder: latents are the pixels in [-1, 1]."""

    @register_to_config
    def __init__(self, channels: int = 3, scaling_factor: float = 1.0, block_out_channels: tuple[int, ...] = (3,),
                 latent_channels: int = 3, force_upcast: bool = False):
        super().__init__()
        # one tensor: ModelMixin reads .device/.dtype from the module's tensors, and saving needs
        # something to write (diffusers loads a component folder through its weights file)
        self.register_buffer("anchor", torch.zeros(1))

    def encode(self, x: torch.Tensor, return_dict: bool = True):
        out = _EncoderOutput(_PointDistribution(x))
        return out if return_dict else (out.latent_dist,)

    def decode(self, z: torch.Tensor, return_dict: bool = True, generator=None):
        return _DecoderOutput(z) if return_dict else (z,)
