"""Text faithfulness for the sample world: does the image show what the prompt names?

A sample-world prompt names a subject colour, a placement and a background (and a subject
kind). These are checked with pixel measurements on a ``WORK``² squash of the image, against
what the sample world's own renderer draws for those words:

- **colour**: each pixel is given the nearest of the world's ten subject colours
  (``samplepool.world.COLOURS``, RGB distance, none if farther than ``COLOUR_RADIUS``). The
  term is the share of pixels of the named colour inside the expected subject box minus their
  share outside it (a subject of that colour, not a frame washed in it), divided by
  ``COLOUR_FULL`` (the share a rendered subject reaches) and clipped to [0, 1].
- **placement**: of all pixels of the named colour, the share inside the expected box, above
  what a uniform spread would put there (the box's share of the frame), rescaled to [0, 1].
  The box is the renderer's for that placement (``samplepool.render.placement_box``: centre,
  thirds left/right, close-up), without its jitter.
- **background**: a 4×4×4 colour histogram of the frame's outer ring, compared (histogram
  intersection) with the same histogram of each of the world's seven backgrounds rendered
  empty; the term is the softmax weight (temperature ``BACKGROUND_TEMPERATURE``) of the named
  background among the seven, so 1/7 means "could be any".

The score is the mean of the three terms, in [0, 1]; a prompt that names none of these
attributes (a free-text prompt) is not judged (NaN). The subject's *kind* (cat or car) is not
checked: telling shapes apart needs a classifier, which is what the CLIP score judge adds when
a CLIP checkpoint is configured. Honest limits: a model that paints a blob of the right colour
in the right place on the right background scores full marks.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from PIL import Image

from photogenic.evaluation.prompts import Prompt

WORK = 64
COLOUR_RADIUS = 80.0
COLOUR_FULL = 0.3
RING = 0.15
BACKGROUND_TEMPERATURE = 0.05
HIST_BINS = 4
#: subject box size (fraction of the short side) and centre x (fraction of the width)
PLACEMENT_BOXES = {"centre": (0.58, 0.5), "thirds_left": (0.5, 1 / 3), "thirds_right": (0.5, 2 / 3),
                   "close_up": (0.88, 0.5), "small": (0.2, 0.5)}


@lru_cache(maxsize=1)
def _palette() -> tuple[list[str], np.ndarray]:
    from photogenic.samplepool.world import COLOURS

    return list(COLOURS), np.array(list(COLOURS.values()), dtype=np.float32)


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


def _ring_mask(h: int, w: int) -> np.ndarray:
    band_y, band_x = max(1, round(RING * h)), max(1, round(RING * w))
    mask = np.ones((h, w), dtype=bool)
    mask[band_y:h - band_y, band_x:w - band_x] = False
    return mask


def _histogram(pixels: np.ndarray) -> np.ndarray:
    bins = np.clip((pixels.astype(np.int32) * HIST_BINS) // 256, 0, HIST_BINS - 1)
    index = (bins[:, 0] * HIST_BINS + bins[:, 1]) * HIST_BINS + bins[:, 2]
    hist = np.bincount(index, minlength=HIST_BINS ** 3).astype(np.float64)
    return hist / max(1.0, hist.sum())


@lru_cache(maxsize=1)
def background_references() -> dict[str, np.ndarray]:
    """Ring histograms of every background as the world renders it, empty, in good light."""
    from photogenic.samplepool.render import BACKGROUNDS, LIGHTING_GRADES, grade
    from photogenic.samplepool.world import GOOD_LIGHTINGS

    refs = {}
    ring = _ring_mask(WORK, WORK)
    for name, draw in BACKGROUNDS.items():
        hists = []
        for seed in range(3):
            for light in GOOD_LIGHTINGS:
                image = grade(draw((WORK, WORK), np.random.default_rng(seed)), LIGHTING_GRADES[light])
                hists.append(_histogram(np.asarray(image)[ring]))
        refs[name] = np.mean(hists, axis=0)
    return refs


def _work(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB").resize((WORK, WORK), Image.Resampling.BOX))


def attribute_terms(image: Image.Image, prompt: Prompt) -> dict[str, float]:
    """The per-attribute terms for the attributes the prompt names (see the module docstring)."""
    pixels = _work(image)
    h, w = pixels.shape[:2]
    box = _box_mask(prompt.placement, h, w)
    terms: dict[str, float] = {}
    names, palette = _palette()
    if prompt.colour in names:
        flat = pixels.reshape(-1, 3).astype(np.float32)
        dist = np.linalg.norm(flat[:, None, :] - palette[None, :, :], axis=2)
        nearest = np.where(dist.min(axis=1) <= COLOUR_RADIUS, dist.argmin(axis=1), -1).reshape(h, w)
        named = nearest == names.index(prompt.colour)
        inside = named[box].mean() if box.any() else 0.0
        outside = named[~box].mean() if (~box).any() else 0.0
        terms["colour"] = float(np.clip((inside - outside) / COLOUR_FULL, 0.0, 1.0))
        if prompt.placement in PLACEMENT_BOXES:
            area = box.mean()
            share = named[box].sum() / named.sum() if named.any() else 0.0
            terms["placement"] = float(np.clip((share - area) / max(1e-6, 1.0 - area), 0.0, 1.0))
    refs = background_references()
    if prompt.background in refs:
        hist = _histogram(pixels[_ring_mask(h, w)])
        sims = {name: float(np.minimum(hist, ref).sum()) for name, ref in refs.items()}
        top = max(sims.values())
        weights = {name: math.exp((s - top) / BACKGROUND_TEMPERATURE) for name, s in sims.items()}
        terms["background"] = weights[prompt.background] / sum(weights.values())
    return terms


def scene_attribute_score(image: Image.Image, prompt: Prompt) -> float:
    terms = attribute_terms(image, prompt)
    return float(np.mean(list(terms.values()))) if terms else float("nan")
