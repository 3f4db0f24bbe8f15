"""The upsampler: its speed, and its fidelity against the sample pool's hidden ground truth.

The pool's small images (the ``too_small`` ones, short side 48-90 px) are drawn scenes, and the
generator can redraw any sample's scene at a multiple of its size (``render_full_resolution``):
that is the full-resolution original a small image stands for. Each original is reduced to the
sample's size by area averaging (how a small web copy of a photo is made), upsampled back by
each method, and compared with the original: PSNR and SSIM of the default (Lanczos with the
configured unsharp mask), of plain Lanczos, and of bicubic and nearest as reference points.
Speed: images per second of the stage's Lanczos worker (decode, resample, sharpen, PNG encode),
as a ratio against plain bicubic with the same decode and encode, measured in the same run.

A diffusion upscaler is measured only for a real checkpoint (``--diffusion-checkpoint``): the
tests' tiny random pipeline would give a meaningless number, so none is printed for it.

    python benchmarks/upsample.py [--quick] [--diffusion-checkpoint PATH_OR_HUB_ID]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import result, run_benchmark  # noqa: E402

SCALE = 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 1,000-sample pool's small images, not 4,000's")
    parser.add_argument("--diffusion-checkpoint", help="a real diffusers upscale pipeline (folder or hub id)")
    parser.add_argument("--diffusion-pipeline", default="x4", choices=["x4", "latent"])
    args = parser.parse_args()

    from PIL import Image

    from photogenic.config import UpsampleConfig
    from photogenic.imaging.fidelity import psnr, ssim
    from photogenic.samplepool.sample import PoolContext, render_full_resolution
    from photogenic.samplepool.spec import SamplePoolSpec
    from photogenic.upsampling.lanczos import png_bytes, upscale, upscale_encoded

    n = 1000 if args.quick else 4000
    ctx = PoolContext.create(n, 0, 1000, SamplePoolSpec())
    small = [i for i, plan in enumerate(ctx.plan) if "too_small" in plan.defects]
    truths = [render_full_resolution(ctx, i, SCALE) for i in small]
    lows = [t.reduce(SCALE) for t in truths]  # area average: SCALE×SCALE blocks
    print(f"pool of {n}: {len(small)} small images ({lows[0].size[0]}x{lows[0].size[1]} ...), "
          f"ground truth redrawn at x{SCALE}")

    settings = UpsampleConfig()
    methods = {
        f"lanczos + unsharp mask {settings.sharpen_percent}% (default)":
            lambda im, size: upscale(im, size, settings.sharpen_percent, settings.sharpen_radius,
                                     settings.sharpen_threshold),
        "lanczos": lambda im, size: im.resize(size, Image.Resampling.LANCZOS),
        "bicubic": lambda im, size: im.resize(size, Image.Resampling.BICUBIC),
        "nearest": lambda im, size: im.resize(size, Image.Resampling.NEAREST),
    }
    scores = {}
    for name, method in methods.items():
        outs = [method(low, truth.size) for low, truth in zip(lows, truths)]
        scores[name] = (statistics.mean(psnr(o, t) for o, t in zip(outs, truths)),
                        statistics.mean(ssim(o, t) for o, t in zip(outs, truths)))
        print(f"  {name:<40} PSNR {scores[name][0]:6.2f} dB   SSIM {scores[name][1]:.4f}")

    if args.diffusion_checkpoint:
        _diffusion(args, lows, truths, ctx, small, psnr, ssim)
    else:
        print("  diffusion: not measured (no --diffusion-checkpoint; random tiny weights would make it meaningless)")

    # speed: the stage's worker against plain bicubic with the same decode and PNG encode
    encoded = []
    for low in lows:
        buffer = io.BytesIO()
        low.save(buffer, "JPEG", quality=90)
        encoded.append((buffer.getvalue(), tuple(s * SCALE for s in low.size)))

    def bicubic_worker(item):
        data, size = item
        return png_bytes(Image.open(io.BytesIO(data)).convert("RGB").resize(size, Image.Resampling.BICUBIC))

    rounds = 1 if args.quick else 3
    timings = {}
    for name, work in (("bicubic", bicubic_worker),
                       ("lanczos", lambda item: upscale_encoded((*item, settings.sharpen_percent,
                                                                 settings.sharpen_radius, settings.sharpen_threshold)))):
        start = time.perf_counter()
        for _ in range(rounds):
            for item in encoded:
                work(item)
        timings[name] = rounds * len(encoded) / (time.perf_counter() - start)
        print(f"  {name:<8} {timings[name]:7.1f} images/s (decode, x{SCALE}, PNG encode; one process)")

    default, plain = list(scores)[:2]
    result("upsample_lanczos_images_per_s", timings["lanczos"], ">=", 10)
    result("upsample_speed_vs_bicubic", timings["lanczos"] / timings["bicubic"], ">=", 0.5)
    result("lanczos_psnr_gain_vs_bicubic_db", scores[default][0] - scores["bicubic"][0], ">=", 0)
    result("lanczos_ssim_gain_vs_bicubic", scores[default][1] - scores["bicubic"][1], ">=", 0)
    result("sharpen_psnr_gain_db", scores[default][0] - scores[plain][0], ">=", 0)
    result("sharpen_ssim_gain", scores[default][1] - scores[plain][1], ">=", 0)

def _diffusion(args, lows, truths, ctx, small, psnr, ssim) -> None:
    """Fidelity of a real diffusion checkpoint on the same images, captioned with the scene's
    ground-truth caption (the best caption a curated row could have)."""
    import statistics

    from photogenic.config import DiffusionUpsampleConfig
    from photogenic.samplepool.captions import scene_caption
    from photogenic.samplepool.sample import scene_of
    from photogenic.upsampling.diffusion import DiffusionUpscaler, Job
    from photogenic.upsampling.plan import passes_needed, sample_seed

    upscaler = DiffusionUpscaler(DiffusionUpsampleConfig(checkpoint=args.diffusion_checkpoint,
                                                         pipeline=args.diffusion_pipeline), ".")
    values = []
    for low, truth, index in zip(lows, truths, small):
        passes = passes_needed(min(low.size), min(truth.size), upscaler.native_scale)
        job = Job(low, scene_caption(scene_of(ctx, index)), sample_seed(0, str(index)))
        out = upscaler.upscale([job], passes)[0].resize(truth.size)
        values.append((psnr(out, truth), ssim(out, truth)))
    p, s = statistics.mean(v[0] for v in values), statistics.mean(v[1] for v in values)
    print(f"  diffusion ({upscaler.name}, real checkpoint {args.diffusion_checkpoint}): PSNR {p:6.2f} dB   SSIM {s:.4f}")
    result("diffusion_real_checkpoint_psnr_db", p, ">=", 0)


if __name__ == "__main__":
    run_benchmark(main)
