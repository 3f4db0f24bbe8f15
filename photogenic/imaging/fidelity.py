"""Full-reference image fidelity: PSNR and SSIM of an image against its ground truth.

SSIM follows Wang et al. (2004): luminance (ITU-R BT.601 luma), an 11×11-support Gaussian
window with sigma 1.5, K1 = 0.01, K2 = 0.03, the mean of the SSIM map.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter


def _array(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float64)


def psnr(image: Image.Image, truth: Image.Image) -> float:
    """Peak signal-to-noise ratio in dB over the RGB channels (8-bit peak 255)."""
    if image.size != truth.size:
        raise ValueError(f"sizes differ: {image.size} vs {truth.size}")
    mse = float(np.mean((_array(image) - _array(truth)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def ssim(image: Image.Image, truth: Image.Image) -> float:
    if image.size != truth.size:
        raise ValueError(f"sizes differ: {image.size} vs {truth.size}")
    x = np.asarray(image.convert("L"), dtype=np.float64)
    y = np.asarray(truth.convert("L"), dtype=np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    blur = lambda a: gaussian_filter(a, sigma=1.5, truncate=3.5)  # noqa: E731  (11×11 support)
    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    ssim_map = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(ssim_map.mean())
