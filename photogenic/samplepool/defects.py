"""Applying defects: pixel defects on a rendered image, byte defects on its JPEG, copies.

Each defect is strong enough to be unmistakable to a person looking at the image (the ground
truth must be right), yet varies in strength from sample to sample so that a filter's
threshold matters. Composition and size defects are not here: they change the scene itself
(see ``world.sample_scene``).
"""

from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFont

from photogenic.samplepool.render import Box, Grade, gaussian_blur, grade
from photogenic.samplepool.world import SMALL_SIDE

#: the quality every sample is encoded with; near-duplicates are re-encoded lower
JPEG_QUALITY = 90

MEME_TEXTS = ("SALE 50%", "BUY NOW", "FREE SHIPPING", "MONDAY MOOD", "WHEN YOU SEE IT", "LIMITED OFFER",
              "BEST PRICE!!!", "NEW ARRIVAL", "CLICK HERE", "LOL")
WATERMARKS = ("© PhotoStockz", "© dreamstock", "imgbank.example", "© SnapMarket", "© stockvault")


def apply_pixel_defects(
    image: Image.Image, defects: tuple[str, ...], rng: np.random.Generator
) -> tuple[Image.Image, list[str]]:
    """Apply the sample's pixel defects in capture order; returns the image and any text drawn."""
    texts: list[str] = []
    for defect in ("underexposed", "overexposed", "washed_out"):
        if defect in defects:
            image = EXPOSURE[defect](image, rng)
    if "blur" in defects:
        image = blur(image, rng)
    if "noise" in defects:
        image = sensor_noise(image, rng)
    if "text_overlay" in defects:
        image, text = text_overlay(image, rng)
        texts.append(text)
    if "watermark" in defects:
        image, text = watermark(image, rng)
        texts.append(text)
    return image, texts


# -- capture defects ----------------------------------------------------------------------------


def underexposed(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    gamma, gain = rng.uniform(1.6, 2.2), rng.uniform(0.4, 0.55)
    return image.point([min(255, int(round(255 * (v / 255) ** gamma * gain))) for v in range(256)] * 3)


def overexposed(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    gain, offset = rng.uniform(1.5, 1.9), rng.uniform(50, 80)
    return grade(image, Grade((gain,) * 3, (offset,) * 3))


def washed_out(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Low contrast and saturation, lifted towards a light haze, as in a faded scan."""
    keep = rng.uniform(0.3, 0.45)
    haze = (1.0 - keep) * rng.uniform(150, 190)
    image = ImageEnhance.Color(image).enhance(rng.uniform(0.15, 0.3))
    return grade(image, Grade((keep,) * 3, (haze,) * 3))


EXPOSURE = {"underexposed": underexposed, "overexposed": overexposed, "washed_out": washed_out}


def blur(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    return gaussian_blur(image, max(1.6, min(image.size) * rng.uniform(0.012, 0.022)))


def sensor_noise(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    sigma = rng.uniform(22, 38)
    noise = rng.standard_normal(size=(image.height, image.width, 3), dtype=np.float32) * np.float32(sigma)
    pixels = np.asarray(image, dtype=np.float32) + noise
    return Image.fromarray(np.clip(np.round(pixels), 0, 255).astype(np.uint8), "RGB")


# -- overlays -----------------------------------------------------------------------------------


@lru_cache(maxsize=256)
def font(size: int) -> ImageFont.FreeTypeFont:
    """Pillow's bundled font: the same glyphs everywhere, no system fonts involved."""
    return ImageFont.load_default(size=size)


def _fitting_size(text: str, width: float, height: float) -> int:
    """The largest font size (up to ``height``) at which ``text`` fits in ``width``."""
    at_100 = font(100).getlength(text)
    return max(8, int(min(height, 100 * width / at_100)))


def text_overlay(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, str]:
    """Large meme or shop-banner text across the image."""
    w, h = image.size
    text = MEME_TEXTS[int(rng.integers(len(MEME_TEXTS)))]
    size = _fitting_size(text, 0.92 * w, rng.uniform(0.14, 0.22) * h)
    draw = ImageDraw.Draw(image)
    if rng.random() < 0.5:
        y = h * (0.14 if rng.random() < 0.5 else 0.86)
        draw.text((w / 2, y), text, font=font(size), fill=(255, 255, 255), anchor="mm",
                  stroke_width=max(1, size // 12), stroke_fill=(0, 0, 0))
    else:
        y = h * rng.uniform(0.55, 0.75)
        draw.rectangle([0, y - 0.75 * size, w, y + 0.75 * size], fill=(210, 30, 40))
        draw.text((w / 2, y), text, font=font(size), fill=(255, 255, 255), anchor="mm")
    return image, text


def watermark(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, str]:
    """Semi-transparent stock-photo text with a ring logo, in one corner."""
    w, h = image.size
    text = WATERMARKS[int(rng.integers(len(WATERMARKS)))]
    size = _fitting_size(text, 0.5 * w, min(w, h) * rng.uniform(0.08, 0.12))
    alpha = int(rng.integers(140, 200))
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font(size))
    text_w, text_h = right - left, bottom - top
    margin = max(2, int(0.03 * min(w, h)))
    x = margin + size if rng.random() < 0.5 else w - margin - text_w
    y = margin if rng.random() < 0.5 else h - margin - text_h
    draw.ellipse([x - size, y, x - 0.15 * size, y + 0.85 * size], outline=(255, 255, 255, alpha),
                 width=max(1, size // 8))
    draw.text((x - left, y - top), text, font=font(size), fill=(255, 255, 255, alpha),
              stroke_width=max(1, size // 14), stroke_fill=(0, 0, 0, alpha // 2))
    return Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB"), text


# -- copies and bytes ---------------------------------------------------------------------------


def encode_jpeg(image: Image.Image, quality: int = JPEG_QUALITY) -> bytes:
    """Baseline JPEG, fixed settings, no optimisation pass: the same pixels give the same bytes."""
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality, optimize=False, progressive=False, subsampling="4:2:0")
    return buffer.getvalue()


def near_duplicate(image: Image.Image, box: Box, rng: np.random.Generator) -> tuple[Image.Image, Box, int]:
    """What a repost does to a picture: a JPEG round trip, a small crop, maybe a downscale, a
    brightness nudge; returns the copy, its subject box and the quality to re-encode it with.

    The short side never drops below ``SMALL_SIDE``, so a copy is never also a too_small image.
    """
    image = Image.open(io.BytesIO(encode_jpeg(image))).convert("RGB")
    w, h = image.size
    crops = (min(int(f * side), (side - SMALL_SIDE) // 2)
             for f, side in zip(rng.uniform(0.0, 0.05, 4), (w, h, w, h)))
    left, top, right, bottom = crops
    image = image.crop((left, top, w - right, h - bottom))
    scale = rng.uniform(0.8, 1.0) if rng.random() < 0.5 else 1.0
    scale = min(1.0, max(scale, SMALL_SIDE / min(image.size)))
    if scale < 1.0:
        image = image.resize((round(image.width * scale), round(image.height * scale)),
                             Image.Resampling.BICUBIC)
    gain = rng.uniform(0.92, 1.08)
    image = grade(image, Grade((gain,) * 3))
    moved = Box((box.x0 - left) * scale, (box.y0 - top) * scale, box.size * scale)
    return image, moved, int(rng.integers(70, 86))


def truncate_jpeg(data: bytes, rng: np.random.Generator) -> bytes:
    """Cut a JPEG inside its entropy-coded data: the header parses, decoding runs out of bytes."""
    scan = data.index(b"\xff\xda")
    return data[: scan + int((len(data) - scan) * rng.uniform(0.3, 0.8))]


CORRUPT_BODIES = (
    b"",
    b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head>"
    b"<body><h1>Not Found</h1><p>The requested URL was not found on this server.</p></body></html>\n",
    b'{"error": {"code": 403, "message": "Access denied: hotlinking is not allowed"}}',
)


def corrupt_bytes(rng: np.random.Generator) -> bytes:
    """What a broken download leaves: nothing, an error page, or binary garbage."""
    choice = int(rng.integers(len(CORRUPT_BODIES) + 1))
    if choice < len(CORRUPT_BODIES):
        return CORRUPT_BODIES[choice]
    # three zero bytes first: no image format Pillow knows starts that way
    return b"\x00\x00\x00" + rng.integers(0, 256, size=int(rng.integers(200, 4000)), dtype=np.uint8).tobytes()
