"""Validation samples: fixed prompts, fixed seeds, one grid image, and their technical quality.

Samples are drawn through the same call evaluation uses (``pipe(prompt=..., generator=[one per
prompt], num_inference_steps=..., guidance_scale=..., output_type="pil").images``), so what the
grids show is what the model will be judged on. Their quality is the auto-filter's weight-free
technical score (photogenic.imaging.quality): sharpness, noise, exposure, contrast, colour.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image

from photogenic.imaging.quality import measure_all


@torch.no_grad()
def draw_samples(pipe, prompts: list[str], steps: int, guidance_scale: float, seed: int = 0) -> list[Image.Image]:
    pipe.set_progress_bar_config(disable=True)
    generators = [torch.Generator("cpu").manual_seed(seed + i) for i in range(len(prompts))]
    return pipe(prompt=list(prompts), generator=generators, num_inference_steps=steps,
                guidance_scale=guidance_scale, output_type="pil").images


def sample_quality(images: list[Image.Image]) -> float:
    """Mean technical quality in [0, 1] of the samples."""
    return float(np.mean([measure_all(image.convert("RGB"))["technical_quality"] for image in images]))


def grid(images: list[Image.Image], captions: list[str] | None = None, cell: int = 96) -> Image.Image:
    """The samples side by side (nearest-neighbour upscaled, so small ones stay legible)."""
    columns = min(len(images), 8)
    rows = math.ceil(len(images) / columns)
    sheet = Image.new("RGB", (columns * cell, rows * cell), "white")
    for i, image in enumerate(images):
        sheet.paste(image.convert("RGB").resize((cell, cell), Image.NEAREST), ((i % columns) * cell, (i // columns) * cell))
    return sheet
