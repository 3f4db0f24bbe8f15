"""The classical upsampler: Lanczos resampling, then a mild unsharp mask.

Why the sharpening: Lanczos (a=3) is the sharpest of the standard separable kernels without
visible ringing, but any interpolation spreads an edge over about as many output pixels as the
scale factor, so an upsampled image reads soft next to a native one; the technical-quality
scorer and a model trained on it would both learn that softness. A light unsharp mask (radius
1 output pixel, 60 %, threshold 2 levels) restores edge contrast without lifting flat areas'
JPEG noise (the threshold) or adding halos (the small radius); ``upsample.sharpen_percent=0``
turns it off. benchmarks/upsample.py measures it against the sample pool's full-resolution
originals (x4 from 48-90 px): it adds about 0.1 dB PSNR and a little SSIM over plain Lanczos,
which beats bicubic on PSNR by about 0.3 dB while bicubic's smoother result keeps about 0.001
more SSIM; stronger or wider masks trade SSIM for PSNR.
"""

from __future__ import annotations

import io

from PIL import Image, ImageFilter

from photogenic.imaging.decode import decode_rgb


def upscale(image: Image.Image, size: tuple[int, int], percent: int, radius: float, threshold: int) -> Image.Image:
    out = image.resize(size, Image.Resampling.LANCZOS)
    if percent > 0 and radius > 0:
        out = out.filter(ImageFilter.UnsharpMask(radius=radius, percent=percent, threshold=threshold))
    return out


def png_bytes(image: Image.Image) -> bytes:
    """Lossless, fixed settings: the same pixels always give the same bytes (and sha256)."""
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=6, optimize=False)
    return buffer.getvalue()


def upscale_encoded(args: tuple[bytes, tuple[int, int], int, float, int]) -> bytes:
    """Worker entry point: original bytes in, PNG bytes of the upsampled image out."""
    data, size, percent, radius, threshold = args
    return png_bytes(upscale(decode_rgb(data), size, percent, radius, threshold))
