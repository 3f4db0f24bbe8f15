"""Text-to-image models as diffusers pipelines: build from config, load, save."""

from photogenic.models.factory import (build_pipeline, draw_latents, is_pixel_space, latent_distribution, layout,
                                       load_pipeline, save_pipeline, to_latents)
from photogenic.models.pixel import PixelSpace

__all__ = ["PixelSpace", "build_pipeline", "draw_latents", "is_pixel_space", "latent_distribution", "layout",
           "load_pipeline", "save_pipeline", "to_latents"]
