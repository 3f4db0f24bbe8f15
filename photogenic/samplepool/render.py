"""Drawing a scene: a background, a subject in its placement box, a lighting grade.

Everything is flat PIL shapes, gradients and low-resolution noise, so a picture is recognisable
at 64-128 px and costs a few milliseconds. A composed scene also gets what a photographer adds:
a soft contact shadow and a defocused background that separates the subject and darkens
towards the corners; an ordinary one stays flat. Only PIL operations and exact numpy arithmetic touch
pixels, so the same scene and stream give the same bytes on any machine with the same Pillow.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageEnhance, ImageFilter

from photogenic.samplepool.world import COLOURS, Scene

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Box:
    """The subject's square placement box; subjects are drawn in its unit coordinates."""

    x0: float
    y0: float
    size: float

    def pt(self, fx: float, fy: float) -> tuple[float, float]:
        return (self.x0 + fx * self.size, self.y0 + fy * self.size)

    def rect(self, fx0: float, fy0: float, fx1: float, fy1: float) -> list[float]:
        return [*self.pt(fx0, fy0), *self.pt(fx1, fy1)]

    def px(self, f: float) -> int:
        """A line width or radius of ``f`` box sizes, at least one pixel."""
        return max(1, int(round(f * self.size)))

    def pixels(self) -> tuple[int, int, int, int]:
        """The box in whole pixels, (x0, y0, x1, y1); may reach outside the frame."""
        return (round(self.x0), round(self.y0), round(self.x0 + self.size), round(self.y0 + self.size))


@dataclass(frozen=True)
class Rendered:
    image: Image.Image
    box: Box


def render_scene(scene: Scene, rng: np.random.Generator) -> Rendered:
    size = (scene.width, scene.height)
    image = BACKGROUNDS[scene.background](size, rng)
    box = placement_box(scene, rng)
    if scene.composed:
        if scene.kind in SHADOW_BASE:
            _cast_shadow(image, box, SHADOW_BASE[scene.kind])
        image = _soften_background(image)
    SUBJECTS[scene.kind](ImageDraw.Draw(image), box, COLOURS[scene.colour], rng, size)
    return Rendered(grade(image, LIGHTING_GRADES[scene.lighting]), box)


# -- placement ----------------------------------------------------------------------------------


def placement_box(scene: Scene, rng: np.random.Generator) -> Box:
    """Where the subject goes: good placements near centre or thirds, defects at an edge."""
    w, h = scene.width, scene.height
    m = min(w, h)
    jx, jy = rng.uniform(-0.03, 0.03, size=2) * m
    placement = scene.placement
    if placement == "edge":
        s = 0.42 * m
        cx, cy = _against_side(scene.side, w, h, centre_offset=s / 2)
    elif placement == "cut_off":
        s = 0.62 * m
        cx, cy = _against_side(scene.side, w, h, centre_offset=rng.uniform(-0.1, 0.1) * s)
    elif placement == "small":
        s = 0.2 * m
        cx, cy = w * rng.uniform(0.3, 0.7), h * rng.uniform(0.35, 0.65)
    else:
        s, fx = {"centre": (0.58, 0.5), "thirds_left": (0.5, 1 / 3),
                 "thirds_right": (0.5, 2 / 3), "close_up": (0.88, 0.5)}[placement]
        s *= m
        cx, cy = w * fx + jx, h / 2 + jy
    return Box(cx - s / 2, cy - s / 2, s)


def _against_side(side: str, w: int, h: int, centre_offset: float) -> tuple[float, float]:
    """A centre ``centre_offset`` pixels inside the given edge, halfway along it."""
    return {
        "left": (centre_offset, h / 2),
        "right": (w - centre_offset, h / 2),
        "top": (w / 2, centre_offset),
        "bottom": (w / 2, h - centre_offset),
    }[side]


# -- lighting -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grade:
    """A colour grade: per-channel gain and offset, contrast about mid-grey, then saturation."""

    gain: tuple[float, float, float] = (1.0, 1.0, 1.0)
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    contrast: float = 1.0
    saturation: float = 1.0


LIGHTING_GRADES = {
    "golden_hour": Grade((1.06, 0.98, 0.8), (14, 6, 0), contrast=1.08, saturation=1.2),
    "daylight": Grade(contrast=1.08, saturation=1.12),
    "studio_soft": Grade((1.0, 0.99, 0.97), (8, 8, 8), contrast=1.0, saturation=1.05),
    "overcast": Grade((0.9, 0.92, 0.97), (12, 14, 20), contrast=0.72, saturation=0.5),
    "dim_evening": Grade((0.5, 0.52, 0.66), (0, 0, 8), contrast=0.85, saturation=0.7),
}


def grade(image: Image.Image, g: Grade) -> Image.Image:
    """One lookup-table pass for gain, offset and contrast; saturation only when it changes."""
    image = image.point(_lut(g))
    return ImageEnhance.Color(image).enhance(g.saturation) if g.saturation != 1.0 else image


@lru_cache(maxsize=64)
def _lut(g: Grade) -> list[int]:
    values = np.arange(256, dtype=np.float64)
    channels = [(values * gain + offset - 128.0) * g.contrast + 128.0 for gain, offset in zip(g.gain, g.offset)]
    return np.clip(np.rint(np.concatenate(channels)), 0, 255).astype(np.uint8).tolist()


@lru_cache(maxsize=1)
def _vignette_mask() -> Image.Image:
    y, x = np.mgrid[-1.0:1.0:65j, -1.0:1.0:65j]
    mask = 255.0 * (1.0 - 0.15 * (x * x + y * y))
    return Image.fromarray(np.round(mask).astype(np.uint8), "L")


def _vignette(size: tuple[int, int]) -> Image.Image:
    return _vignette_mask().resize(size, Image.Resampling.BILINEAR).convert("RGB")


def gaussian_blur(image: Image.Image, radius: float) -> Image.Image:
    return _at_reduced_scale(image, radius, lambda small, r: small.filter(ImageFilter.GaussianBlur(r)))


def _soften_background(image: Image.Image) -> Image.Image:
    """The photographer's background: out of focus, and darker towards the corners."""
    return _at_reduced_scale(
        image, max(1.0, min(image.size) / 110),
        lambda small, r: ImageChops.multiply(small.filter(ImageFilter.GaussianBlur(r)), _vignette(small.size)),
    )


def _at_reduced_scale(
    image: Image.Image, radius: float, blur: Callable[[Image.Image, float], Image.Image]
) -> Image.Image:
    """Run a blur on a copy reduced until its radius is about one pixel, then scale back up: a
    wide blur at full size costs more than all the rest of a sample, and looks the same."""
    factor = max(1, int(round(radius)))
    if factor == 1:
        return blur(image, radius)
    return blur(image.reduce(factor), radius / factor).resize(image.size, Image.Resampling.BILINEAR)


def _cast_shadow(image: Image.Image, box: Box, base: float) -> None:
    """A soft dark ellipse where the subject meets the ground (softened by the defocus)."""
    mask = Image.new("L", image.size, 0)
    ImageDraw.Draw(mask).ellipse(box.rect(0.06, base - 0.05, 0.94, base + 0.04), fill=110)
    image.paste((0, 0, 0), mask=mask)


# -- backgrounds --------------------------------------------------------------------------------


def _gradient(size: tuple[int, int], top: RGB, bottom: RGB) -> Image.Image:
    w, h = size
    t = np.linspace(0.0, 1.0, h)[:, None]
    column = np.round(np.array(top, float) * (1.0 - t) + np.array(bottom, float) * t).astype(np.uint8)
    return Image.fromarray(column[:, None, :], "RGB").resize((w, h), Image.Resampling.NEAREST)


def _textured(image: Image.Image, rng: np.random.Generator, strength: int, grain: int) -> Image.Image:
    """Add smooth low-frequency noise (grass blades, sand) without per-pixel random draws."""
    w, h = image.size
    small = rng.integers(128 - strength, 128 + strength + 1, size=(max(2, h // grain), max(2, w // grain)))
    noise = Image.fromarray(small.astype(np.uint8), "L").resize((w, h), Image.Resampling.BILINEAR)
    return ImageChops.add(image, noise.convert("RGB"), 1.0, -128)


def _sky(size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    w, h = size
    m = min(size)
    image = _gradient(size, (60, 125, 205), (185, 215, 240))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(1, 4))):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0.08, 0.4) * h, rng.uniform(0.06, 0.12) * m
        for dx, dy, f in ((0.0, 0.0, 1.0), (-0.5 * r, -0.3 * r, 0.6), (0.45 * r, -0.25 * r, 0.55)):
            draw.ellipse([cx + dx - f * r, cy + dy - 0.5 * f * r, cx + dx + f * r, cy + dy + 0.5 * f * r],
                         fill=(245, 247, 250))
    return image


def _grass_field(size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    w, h = size
    horizon = int(h * 0.42)
    image = _sky(size, rng)
    grass = _gradient((w, h - horizon), (115, 180, 75), (45, 115, 45))
    image.paste(_textured(grass, rng, 18, max(2, min(size) // 40)), (0, horizon))
    return image


def _beach(size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    w, h = size
    sea_top, sand_top = int(h * 0.4), int(h * 0.55)
    image = _sky(size, rng)
    image.paste(_gradient((w, sand_top - sea_top), (30, 105, 165), (70, 155, 190)), (0, sea_top))
    sand = _gradient((w, h - sand_top), (238, 218, 170), (210, 185, 135))
    image.paste(_textured(sand, rng, 12, max(2, min(size) // 60)), (0, sand_top))
    ImageDraw.Draw(image).line([(0, sand_top), (w, sand_top)], fill=(245, 248, 250), width=max(1, min(size) // 90))
    return image


STUDIO_BACKDROPS: tuple[RGB, ...] = ((232, 226, 214), (205, 205, 212), (200, 215, 232), (228, 208, 202))


def _studio(size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    w, h = size
    backdrop = STUDIO_BACKDROPS[int(rng.integers(len(STUDIO_BACKDROPS)))]
    image = _gradient(size, _scale(backdrop, 0.78), backdrop)
    floor_top = int(h * 0.72)
    image.paste(_gradient((w, h - floor_top), _scale(backdrop, 0.86), _scale(backdrop, 0.96)), (0, floor_top))
    return image


def _brick_wall(size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    w, h = size
    image = Image.new("RGB", size, (195, 190, 180))
    draw = ImageDraw.Draw(image)
    brick_h = max(4.0, min(size) / 11)
    brick_w, gap = brick_h * 2.3, max(1.0, brick_h / 8)
    rows, cols = int(h / brick_h) + 1, int(w / brick_w) + 2
    shades = rng.integers(-18, 19, size=(rows, cols))
    for r in range(rows):
        shift = (r % 2) * brick_w / 2
        for c in range(cols):
            x, y, d = c * brick_w - shift, r * brick_h, int(shades[r, c])
            draw.rectangle([x, y, x + brick_w - gap, y + brick_h - gap], fill=(150 + d, 66 + d // 2, 48 + d // 3))
    return _textured(image, rng, 10, max(2, min(size) // 50))


def _night_city(size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    w, h = size
    m = min(size)
    image = _gradient(size, (8, 12, 35), (48, 36, 78))
    draw = ImageDraw.Draw(image)
    window = max(2.0, m / 40)
    x = 0.0
    while x < w:
        bw, bh = rng.uniform(0.08, 0.18) * max(w, m), rng.uniform(0.3, 0.75) * h
        top = h - bh
        draw.rectangle([x, top, x + bw, h], fill=(18, 20, 32))
        cols, rows = max(1, int(bw / (2 * window))), max(1, int(bh / (2 * window)))
        lit = rng.random((rows, cols)) < 0.35
        for r, c in zip(*np.nonzero(lit)):
            wx, wy = x + (2 * c + 0.5) * window, top + (2 * r + 0.5) * window
            draw.rectangle([wx, wy, wx + window, wy + window], fill=(250, 215, 120))
        x += bw + rng.uniform(0.0, 0.03) * w
    return image


def _forest(size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    w, h = size
    m = min(size)
    image = _gradient(size, (150, 188, 160), (35, 75, 45))
    draw = ImageDraw.Draw(image)
    for colour, scale, base in (((62, 110, 70), 0.45, 0.62), ((26, 66, 36), 0.7, 0.9)):
        tree_w = scale * 0.4 * m
        for x in np.arange(-tree_w / 2, w + tree_w, tree_w * 0.7):
            x = float(x) + rng.uniform(-0.15, 0.15) * tree_w
            tree_h = scale * m * rng.uniform(0.8, 1.2)
            bottom = h * base
            draw.rectangle([x - tree_w * 0.06, bottom - tree_h * 0.1, x + tree_w * 0.06, h], fill=(70, 50, 35))
            draw.polygon([(x, bottom - tree_h), (x - tree_w / 2, bottom), (x + tree_w / 2, bottom)], fill=colour)
    return image


BACKGROUNDS: dict[str, Callable[[tuple[int, int], np.random.Generator], Image.Image]] = {
    "sky": _sky,
    "grass_field": _grass_field,
    "beach": _beach,
    "studio": _studio,
    "brick_wall": _brick_wall,
    "night_city": _night_city,
    "forest": _forest,
}


# -- subjects -----------------------------------------------------------------------------------

SKIN_TONES: tuple[RGB, ...] = ((245, 205, 175), (225, 180, 140), (190, 140, 100), (140, 95, 65), (95, 65, 45))
HAIR_COLOURS: tuple[RGB, ...] = ((35, 28, 25), (90, 60, 35), (200, 160, 90), (150, 60, 30), (180, 180, 185))
ROOF_COLOURS: tuple[RGB, ...] = ((140, 50, 40), (70, 75, 85), (100, 70, 50))


def _scale(colour: RGB, f: float) -> RGB:
    return tuple(min(255, int(c * f)) for c in colour)  # type: ignore[return-value]


def _lighten(colour: RGB, f: float) -> RGB:
    return tuple(int(c + (255 - c) * f) for c in colour)  # type: ignore[return-value]


def _pick(rng: np.random.Generator, options: tuple):
    return options[int(rng.integers(len(options)))]


def _portrait(d: ImageDraw.ImageDraw, b: Box, colour: RGB, rng: np.random.Generator, size) -> None:
    skin, hair = _pick(rng, SKIN_TONES), _pick(rng, HAIR_COLOURS)
    d.ellipse(b.rect(0.05, 0.64, 0.95, 1.3), fill=colour)
    d.rectangle(b.rect(0.42, 0.5, 0.58, 0.7), fill=_scale(skin, 0.88))
    d.ellipse(b.rect(0.25, 0.08, 0.75, 0.64), fill=hair)
    d.ellipse(b.rect(0.3, 0.16, 0.7, 0.6), fill=skin)
    d.pieslice(b.rect(0.28, 0.1, 0.72, 0.46), 180, 360, fill=hair)
    for fx in (0.41, 0.59):
        d.ellipse(b.rect(fx - 0.025, 0.35, fx + 0.025, 0.4), fill=(40, 30, 30))
    d.arc(b.rect(0.43, 0.42, 0.57, 0.53), 20, 160, fill=(160, 60, 60), width=b.px(0.015))


def _cake(d: ImageDraw.ImageDraw, b: Box, colour: RGB, rng: np.random.Generator, size) -> None:
    d.ellipse(b.rect(0.04, 0.8, 0.96, 0.98), fill=(236, 236, 240))
    sponge = _lighten(colour, 0.25)
    d.ellipse(b.rect(0.18, 0.78, 0.82, 0.92), fill=sponge)
    d.rectangle(b.rect(0.18, 0.45, 0.82, 0.85), fill=sponge)
    d.rectangle(b.rect(0.18, 0.62, 0.82, 0.66), fill=(250, 240, 225))
    d.ellipse(b.rect(0.18, 0.38, 0.82, 0.52), fill=colour)
    for i in range(int(rng.integers(1, 4))):
        fx = 0.36 + 0.14 * i
        d.rectangle(b.rect(fx - 0.012, 0.26, fx + 0.012, 0.44), fill=(250, 250, 250))
        d.ellipse(b.rect(fx - 0.02, 0.2, fx + 0.02, 0.26), fill=(255, 200, 60))
    d.ellipse(b.rect(0.62, 0.36, 0.7, 0.44), fill=(190, 20, 40))


def _fruit_bowl(d: ImageDraw.ImageDraw, b: Box, colour: RGB, rng: np.random.Generator, size) -> None:
    fruits = (((240, 140, 30), 0.2, 0.3), ((200, 30, 40), 0.42, 0.24), ((120, 190, 60), 0.62, 0.3),
              ((110, 50, 120), 0.34, 0.38), ((245, 215, 60), 0.52, 0.4))
    for fruit, fx, fy in fruits:
        r = 0.12 + 0.03 * rng.random()
        d.ellipse(b.rect(fx, fy, fx + 2 * r, fy + 2 * r), fill=fruit)
    d.pieslice(b.rect(0.06, 0.22, 0.94, 0.96), 0, 180, fill=colour)
    d.ellipse(b.rect(0.06, 0.54, 0.94, 0.64), outline=_scale(colour, 0.7), width=b.px(0.02))
    d.rectangle(b.rect(0.38, 0.92, 0.62, 0.97), fill=_scale(colour, 0.8))


def _cat(d: ImageDraw.ImageDraw, b: Box, colour: RGB, rng: np.random.Generator, size) -> None:
    dark = _scale(colour, 0.7)
    d.arc(b.rect(0.55, 0.45, 1.0, 1.0), 270, 90, fill=dark, width=b.px(0.06))
    d.ellipse(b.rect(0.2, 0.45, 0.8, 1.0), fill=colour)
    d.ellipse(b.rect(0.36, 0.6, 0.64, 0.95), fill=_lighten(colour, 0.45))
    for ear in (((0.29, 0.26), (0.32, 0.03), (0.46, 0.16)), ((0.71, 0.26), (0.68, 0.03), (0.54, 0.16))):
        d.polygon([b.pt(*p) for p in ear], fill=colour)
    d.ellipse(b.rect(0.27, 0.12, 0.73, 0.55), fill=colour)
    eye = _pick(rng, ((90, 190, 90), (230, 190, 60), (90, 160, 220)))
    for fx in (0.405, 0.595):
        d.ellipse(b.rect(fx - 0.05, 0.27, fx + 0.05, 0.37), fill=eye)
        d.ellipse(b.rect(fx - 0.012, 0.28, fx + 0.012, 0.36), fill=(15, 15, 15))
    d.polygon([b.pt(0.47, 0.4), b.pt(0.53, 0.4), b.pt(0.5, 0.44)], fill=(235, 140, 150))
    for dy in (-0.02, 0.02):
        d.line([b.pt(0.2, 0.42 + dy), b.pt(0.42, 0.43)], fill=(240, 240, 240), width=1)
        d.line([b.pt(0.58, 0.43), b.pt(0.8, 0.42 + dy)], fill=(240, 240, 240), width=1)


def _bird(d: ImageDraw.ImageDraw, b: Box, colour: RGB, rng: np.random.Generator, size) -> None:
    d.line([b.pt(-0.05, 0.82), b.pt(1.05, 0.76)], fill=(100, 70, 45), width=b.px(0.045))
    d.polygon([b.pt(0.22, 0.55), b.pt(0.0, 0.72), b.pt(0.1, 0.78), b.pt(0.3, 0.64)], fill=_scale(colour, 0.7))
    d.ellipse(b.rect(0.15, 0.32, 0.75, 0.76), fill=colour)
    d.ellipse(b.rect(0.35, 0.5, 0.72, 0.76), fill=_lighten(colour, 0.5))
    d.ellipse(b.rect(0.52, 0.16, 0.84, 0.46), fill=colour)
    d.polygon([b.pt(0.82, 0.27), b.pt(0.98, 0.31), b.pt(0.82, 0.36)], fill=(245, 160, 40))
    d.ellipse(b.rect(0.68, 0.24, 0.74, 0.3), fill=(15, 15, 15))
    d.ellipse(b.rect(0.25, 0.42, 0.58, 0.62), fill=_scale(colour, 0.75))
    for fx in (0.42, 0.52):
        d.line([b.pt(fx, 0.74), b.pt(fx, 0.8)], fill=(90, 70, 50), width=b.px(0.015))


def _mountains(d: ImageDraw.ImageDraw, b: Box, colour: RGB, rng: np.random.Generator, size) -> None:
    """The landscape is the subject: the main peak sits in the box, the range spans the frame."""
    w, h = size
    horizon = b.y0 + b.size
    rock = tuple(int(0.55 * c + 0.45 * g) for c, g in zip(colour, (95, 95, 105)))
    sx, sy = b.pt(0.15 if b.x0 + b.size / 2 > w / 2 else 0.85, -0.05)
    sun = b.size * 0.12
    d.ellipse([sx - sun, sy - sun, sx + sun, sy + sun], fill=(255, 225, 140))
    far = _lighten(rock, 0.35)
    step = b.size * 0.55
    for x in np.arange(-step, w + step, step):
        peak = horizon - b.size * rng.uniform(0.3, 0.5)
        d.polygon([(x - step, horizon), (x, peak), (x + step, horizon)], fill=far)
    d.polygon([b.pt(-0.45, 1.0), b.pt(0.5, 0.0), b.pt(1.45, 1.0)], fill=_scale(rock, 0.85))
    d.polygon([b.pt(0.5, 0.0), b.pt(1.45, 1.0), b.pt(0.75, 1.0)], fill=_scale(rock, 0.65))
    d.polygon([b.pt(0.33, 0.18), b.pt(0.5, 0.0), b.pt(0.67, 0.18), b.pt(0.57, 0.15), b.pt(0.5, 0.22),
               b.pt(0.42, 0.15)], fill=(248, 250, 252))
    if horizon < h:
        d.rectangle([0, horizon, w, h], fill=(60, 105, 55))


def _car(d: ImageDraw.ImageDraw, b: Box, colour: RGB, rng: np.random.Generator, size) -> None:
    d.polygon([b.pt(0.22, 0.46), b.pt(0.32, 0.22), b.pt(0.7, 0.22), b.pt(0.82, 0.46)], fill=colour)
    d.rounded_rectangle(b.rect(0.02, 0.44, 0.98, 0.76), radius=b.px(0.08), fill=colour)
    glass = (170, 210, 235)
    d.polygon([b.pt(0.27, 0.44), b.pt(0.35, 0.26), b.pt(0.49, 0.26), b.pt(0.49, 0.44)], fill=glass)
    d.polygon([b.pt(0.52, 0.44), b.pt(0.52, 0.26), b.pt(0.67, 0.26), b.pt(0.77, 0.44)], fill=glass)
    d.line([b.pt(0.505, 0.46), b.pt(0.505, 0.7)], fill=_scale(colour, 0.7), width=b.px(0.01))
    for fx in (0.24, 0.76):
        d.ellipse(b.rect(fx - 0.11, 0.6, fx + 0.11, 0.82), fill=(30, 30, 32))
        d.ellipse(b.rect(fx - 0.05, 0.66, fx + 0.05, 0.76), fill=(190, 190, 195))
    d.ellipse(b.rect(0.9, 0.5, 0.97, 0.57), fill=(255, 230, 120))
    d.rectangle(b.rect(0.03, 0.5, 0.06, 0.57), fill=(200, 30, 30))


def _flower(d: ImageDraw.ImageDraw, b: Box, colour: RGB, rng: np.random.Generator, size) -> None:
    green = (60, 140, 60)
    d.line([b.pt(0.5, 0.4), b.pt(0.5, 1.0)], fill=green, width=b.px(0.04))
    d.ellipse(b.rect(0.28, 0.7, 0.5, 0.8), fill=green)
    d.ellipse(b.rect(0.5, 0.6, 0.72, 0.7), fill=green)
    petals = int(rng.integers(5, 9))
    for i in range(petals):
        angle = 2 * math.pi * i / petals
        fx, fy = 0.5 + 0.17 * math.cos(angle), 0.33 + 0.17 * math.sin(angle)
        d.ellipse(b.rect(fx - 0.12, fy - 0.12, fx + 0.12, fy + 0.12), fill=colour)
    heart = (120, 70, 30) if colour[0] > 200 and colour[1] > 180 else (250, 205, 50)
    d.ellipse(b.rect(0.41, 0.24, 0.59, 0.42), fill=heart)


def _house(d: ImageDraw.ImageDraw, b: Box, colour: RGB, rng: np.random.Generator, size) -> None:
    roof = _pick(rng, ROOF_COLOURS)
    d.rectangle(b.rect(0.64, 0.14, 0.74, 0.34), fill=_scale(roof, 0.8))
    d.rectangle(b.rect(0.15, 0.42, 0.85, 0.95), fill=colour)
    d.polygon([b.pt(0.06, 0.46), b.pt(0.5, 0.1), b.pt(0.94, 0.46)], fill=roof)
    d.rectangle(b.rect(0.43, 0.68, 0.57, 0.95), fill=(110, 70, 40))
    for fx in (0.22, 0.64):
        d.rectangle(b.rect(fx, 0.53, fx + 0.14, 0.67), fill=(250, 235, 170), outline=(245, 245, 245),
                    width=b.px(0.012))


SUBJECTS: dict[str, Callable[..., None]] = {
    "portrait": _portrait,
    "cake": _cake,
    "fruit_bowl": _fruit_bowl,
    "cat": _cat,
    "bird": _bird,
    "mountains": _mountains,
    "car": _car,
    "flower": _flower,
    "house": _house,
}
#: where a subject meets the ground, in box units, for the composed scene's contact shadow
SHADOW_BASE = {"cake": 0.96, "fruit_bowl": 0.95, "cat": 0.99, "car": 0.8, "house": 0.95}
