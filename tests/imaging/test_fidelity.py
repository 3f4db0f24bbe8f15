"""PSNR/SSIM, and the sample pool's full-resolution redraw the upsampling benchmark relies on."""

import numpy as np
from PIL import Image

from photogenic.imaging.fidelity import psnr, ssim
from photogenic.samplepool.sample import PoolContext, render_clean, render_full_resolution
from photogenic.samplepool.spec import SamplePoolSpec


def test_psnr_and_ssim_rank_a_closer_image_higher():
    rng = np.random.default_rng(0)
    truth = Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8))
    assert psnr(truth, truth) == float("inf") and abs(ssim(truth, truth) - 1.0) < 1e-9
    noisy = lambda s: Image.fromarray(np.clip(np.asarray(truth, float) + rng.normal(0, s, (40, 50, 3)), 0, 255).astype(np.uint8))  # noqa: E731
    mild, strong = noisy(5), noisy(40)
    assert psnr(mild, truth) > psnr(strong, truth) and ssim(mild, truth) > ssim(strong, truth)
    # uniform error of 10 levels: 20·log10(255/10) dB
    shifted = Image.fromarray(np.full((8, 8, 3), 110, np.uint8))
    assert abs(psnr(shifted, Image.fromarray(np.full((8, 8, 3), 100, np.uint8))) - 20 * np.log10(25.5)) < 1e-9


def test_full_resolution_redraw_is_the_same_scene_larger_and_deterministic():
    ctx = PoolContext.create(200, 0, 100, SamplePoolSpec())
    index = next(i for i, plan in enumerate(ctx.plan) if "too_small" in plan.defects)
    small = render_clean(ctx, index).image
    big = render_full_resolution(ctx, index, 4)
    assert big.size == (small.width * 4, small.height * 4)
    assert big.tobytes() == render_full_resolution(ctx, index, 4).tobytes()
    # the same scene: reduced back to the sample's size it is close to the sample's own drawing
    assert psnr(big.reduce(4), small) > 20
