"""Text faithfulness for the sample world: does the image show what the prompt names?

A sample-world prompt names a subject colour, a placement and a background (and a subject
kind). These are checked with pixel measurements on a ``WORK``² squash of the image, against
what the sample world's own renderer draws for those words.

- **colour**: each pixel is labelled with the world colour it shows (``_colour_labels``): the
  channels are first stretched to their own range (``_levelled``), which undoes most of a
  global grade, then vivid colours go by hue and the dull ones by RGB distance, so that a
  dimly lit or faded picture of a red car still shows a red car. The term is the share of
  pixels of the named colour inside the expected subject box minus their share outside it (a
  subject of that colour, not a frame washed in it), divided by ``COLOUR_FULL`` (the share a
  rendered subject reaches) and clipped to [0, 1].
- **placement**: of all pixels of the named colour, the share inside the expected box, above
  what a uniform spread would put there (the box's share of the frame), rescaled to [0, 1].
  The box is the renderer's for that placement (``samplepool.render.placement_box``: centre,
  thirds left/right, close-up), without its jitter.
- **background**: the mean colour of each cell of a ``GRID``² split of the frame, over the
  cells the subject box leaves free, levelled on those cells' own pixels, compared with the
  same cells of each of the world's seven backgrounds rendered empty and levelled (under its
  best-matching lighting); the term is the
  softmax weight (temperature ``BACKGROUND_TEMPERATURE``) of the named background among the
  seven, so 1/7 means "could be any". The layout matters as well as the colours: sky above sand
  is a beach, sky above grass a field.

The score is the mean of the three terms, in [0, 1]; a prompt that names none of these
attributes (a free-text prompt) is not judged (NaN). The subject's *kind* (cat or car) is not
checked: telling shapes apart needs a classifier, which is what the CLIP score judge adds when
a CLIP checkpoint is configured. Honest limits: a model that paints a blob of the right colour
in the right place on the right background scores full marks; placements that nest (centre
inside close-up) are hard to tell apart; and the checker still rewards appeal in part. On the
180 held-out prompts rendered by the world (``benchmarks/judge_validity.py``) it prefers the
named scene over one with one wrong attribute 84% of the time (win rate, ties split), but
also prefers a carefully composed render over a flat, defective one showing the same
attributes 67% of the time (ideal: 50%), mostly through the colour term (faded, noisy or
blurred subjects lose colour pixels). Read its win rates as somewhat biased towards the
better-looking model. (Matching backgrounds without levelling recognised more of them, 79%
against 59% of correct renders, but let exposure decide: 84% on the appeal-only pairs.)
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from PIL import Image
from scipy import ndimage

from photogenic.evaluation.judges.registry import TEXT_FAITHFULNESS, register_judge, tie_margin
from photogenic.evaluation.prompts import Prompt
from photogenic.samplepool.render import BACKGROUNDS, LIGHTING_GRADES, grade
from photogenic.samplepool.world import COLOURS, LIGHTINGS

WORK = 64
COLOUR_RADIUS = 80.0
HUE_RADIUS = 18.0
MIN_CHROMA = 0.4
MIN_CHROMA_FLOOR = 0.06
DULL = ("grey", "brown")
COLOUR_FULL = 0.3
BACKGROUND_TEMPERATURE = 0.05
GRID = 4
#: subject box size (fraction of the short side) and centre x (fraction of the width)
PLACEMENT_BOXES = {"centre": (0.58, 0.5), "thirds_left": (0.5, 1 / 3), "thirds_right": (0.5, 2 / 3),
                   "close_up": (0.88, 0.5), "small": (0.2, 0.5)}


@lru_cache(maxsize=1)
def _palette() -> tuple[list[str], np.ndarray, np.ndarray]:
    """The world's subject colours: names, RGB, and hue angles in degrees."""
    rgb = np.array(list(COLOURS.values()), dtype=np.float32)
    return list(COLOURS), rgb, _hue(rgb / 255.0)


def _hue(rgb: np.ndarray) -> np.ndarray:
    """Hue in degrees of RGB values in [0, 1] (the last axis)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return (np.degrees(np.arctan2(np.sqrt(3.0) * (g - b), 2.0 * r - g - b)) + 360.0) % 360.0


def _levelled(pixels: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Undo a global grade: each channel stretched from its 1st to 99th percentile to [0, 1].

    The world's lighting grades (and exposure defects) are per-channel gains, offsets and
    contrast; stretching each channel removes most of them, so that an overcast red car is
    still red. A flat channel stays as it is. ``mask`` (H×W) picks the pixels the percentiles
    are taken from.
    """
    flat = pixels.reshape(-1, 3).astype(np.float32) / 255.0
    basis = flat if mask is None else flat[mask.reshape(-1)]
    lo, hi = np.percentile(basis, 1, axis=0), np.percentile(basis, 99, axis=0)
    span = np.where(hi - lo > 0.05, hi - lo, 1.0)
    return np.clip((flat - np.where(hi - lo > 0.05, lo, 0.0)) / span, 0.0, 1.0).reshape(pixels.shape)


def _colour_labels(pixels: np.ndarray) -> np.ndarray:
    """Per pixel, the index of the world colour it shows, or -1.

    Vivid colours by hue (within ``HUE_RADIUS`` degrees, on pixels whose chroma after levelling
    is at least ``MIN_CHROMA`` of the image's 95th-percentile chroma and ``MIN_CHROMA_FLOOR``):
    hue survives lighting grades that RGB distance does not.
    The two dull colours (grey, brown) have no reliable hue; they go by RGB distance on the
    levelled pixels.
    """
    names, rgb, hues = _palette()
    # a 3x3 median first: sensor noise scatters the hue of single pixels, a subject's area keeps it
    level = ndimage.median_filter(_levelled(pixels), size=(3, 3, 1), mode="nearest")
    chroma = level.max(axis=-1) - level.min(axis=-1)
    # relative to the image's own most colourful pixels: a faded photo still shows its colours
    min_chroma = max(MIN_CHROMA_FLOOR, MIN_CHROMA * float(np.percentile(chroma, 95)))
    hue = _hue(level)
    labels = np.full(pixels.shape[:2], -1, dtype=np.int64)
    best = np.full(pixels.shape[:2], HUE_RADIUS, dtype=np.float32)
    for index, name in enumerate(names):
        if name in DULL:
            continue
        distance = np.abs((hue - hues[index] + 180.0) % 360.0 - 180.0)
        take = (chroma >= min_chroma) & (distance < best)
        labels[take], best[take] = index, distance[take]
    for index, name in enumerate(names):
        if name in DULL:
            near = np.linalg.norm(level * 255.0 - rgb[index], axis=-1) <= COLOUR_RADIUS / 2
            labels[near & (labels < 0)] = index
    return labels


def _box_mask(placement: str | None, h: int, w: int) -> np.ndarray:
    mask = np.zeros((h, w), dtype=bool)
    if placement not in PLACEMENT_BOXES:
        mask[:] = True
        return mask
    size, fx = PLACEMENT_BOXES[placement]
    s = size * min(h, w)
    cx, cy = fx * w, h / 2
    y0, y1 = max(0, round(cy - s / 2)), min(h, round(cy + s / 2))
    x0, x1 = max(0, round(cx - s / 2)), min(w, round(cx + s / 2))
    mask[y0:y1, x0:x1] = True
    return mask


@lru_cache(maxsize=1)
def background_references() -> dict[str, np.ndarray]:
    """Per background, its ``GRID``² cell mean colours (levelled) as the world renders it empty
    under each of the world's lightings: an array (lightings, GRID, GRID, 3)."""

    refs = {}
    for name, draw in BACKGROUNDS.items():
        per_light = []
        for light in LIGHTINGS:
            images = [np.asarray(grade(draw((WORK, WORK), np.random.default_rng(seed)), LIGHTING_GRADES[light]))
                      for seed in range(3)]
            per_light.append(np.mean([_cells(_levelled(im)) for im in images], axis=0))
        refs[name] = np.stack(per_light)
    return refs


def _background_weights(cells: np.ndarray, free: np.ndarray, refs: dict[str, np.ndarray]) -> dict[str, float]:
    """Softmax over backgrounds of the distance to each (under its best-matching lighting)."""
    dist = {name: float(np.linalg.norm(ref[:, free] - cells[free], axis=-1).mean(axis=1).min())
            for name, ref in refs.items()}
    low = min(dist.values())
    weights = {name: math.exp((low - d) / BACKGROUND_TEMPERATURE) for name, d in dist.items()}
    total = sum(weights.values())
    return {name: w / total for name, w in weights.items()}


def _cells(level: np.ndarray) -> np.ndarray:
    """Mean colour of each cell of a ``GRID``×``GRID`` split of a levelled image."""
    h, w = level.shape[:2]
    return level[: h - h % GRID, : w - w % GRID].reshape(GRID, h // GRID, GRID, w // GRID, 3).mean(axis=(1, 3))


def _background_cells(placement: str | None, h: int, w: int) -> np.ndarray:
    """The cells the subject box does not touch (where the background shows), as a boolean grid."""
    box = _box_mask(placement, h, w) if placement in PLACEMENT_BOXES else np.zeros((h, w), dtype=bool)
    touched = box[: h - h % GRID, : w - w % GRID].reshape(GRID, h // GRID, GRID, w // GRID).mean(axis=(1, 3))
    free = touched < 0.25
    return free if free.sum() >= 3 else np.ones((GRID, GRID), dtype=bool)


def _work(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB").resize((WORK, WORK), Image.Resampling.BOX))


def attribute_terms(image: Image.Image, prompt: Prompt) -> dict[str, float]:
    """The per-attribute terms for the attributes the prompt names (see the module docstring)."""
    pixels = _work(image)
    h, w = pixels.shape[:2]
    box = _box_mask(prompt.placement, h, w)
    terms: dict[str, float] = {}
    names = _palette()[0]
    if prompt.colour in names:
        named = _colour_labels(pixels) == names.index(prompt.colour)
        inside = named[box].mean() if box.any() else 0.0
        outside = named[~box].mean() if (~box).any() else 0.0
        terms["colour"] = float(np.clip((inside - outside) / COLOUR_FULL, 0.0, 1.0))
        if prompt.placement in PLACEMENT_BOXES:
            area = box.mean()
            share = named[box].sum() / named.sum() if named.any() else 0.0
            terms["placement"] = float(np.clip((share - area) / max(1e-6, 1.0 - area), 0.0, 1.0))
    refs = background_references()
    if prompt.background in refs:
        free = _background_cells(prompt.placement, h, w)
        # levelled on the background's own pixels, so that neither the subject's colours nor the
        # exposure decide which place this is
        cell_mask = np.kron(free, np.ones((h // GRID, w // GRID), dtype=bool))
        weights = _background_weights(_cells(_levelled(pixels, cell_mask)), free, refs)
        terms["background"] = weights[prompt.background]
    return terms


def scene_attribute_score(image: Image.Image, prompt: Prompt) -> float:
    terms = attribute_terms(image, prompt)
    return float(np.mean(list(terms.values()))) if terms else float("nan")


class SceneAttributeJudge:
    name = "scene_attributes"
    criterion = TEXT_FAITHFULNESS

    def __init__(self, tie_margin: float = 0.02):
        self.tie_margin = tie_margin

    def score(self, images: list[Image.Image], prompts: list[Prompt]) -> list[float]:
        return [scene_attribute_score(image, prompt) for image, prompt in zip(images, prompts)]


register_judge("scene_attributes", lambda s: SceneAttributeJudge(tie_margin(s, "scene_attributes", 0.02)))
