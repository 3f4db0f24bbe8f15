"""The synthetic world: what a scene can contain, and how one scene is drawn at random.

Subject kinds map onto the concepts Emu balanced its pool across (portrait, food, animal,
landscape, car, ...), so concept balancing has something to balance. A scene is either
*composed* (flattering light, a good position and size, a vivid colour, a background that suits
the subject) or *ordinary*, with one to three named weaknesses. Photogenic means composed and
free of image defects, so the hidden ground truth is a function of what the picture shows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: what can make an ordinary scene ordinary: its light, subject size, colour or background
WEAKNESSES = ("flat_lighting", "small_subject", "dull_colour", "mismatched_background")


@dataclass(frozen=True)
class Kind:
    concept: str
    #: the noun phrase of the scene caption, with "{colour}" for the subject colour
    phrase: str
    #: backgrounds this subject looks good against
    suited: tuple[str, ...]
    #: alt-text nouns a web page might use for it
    alt_nouns: tuple[str, ...]


KINDS: dict[str, Kind] = {
    "portrait": Kind("portrait", "a person in a {colour} sweater", ("studio", "brick_wall", "forest", "beach"),
                     ("portrait", "me", "headshot", "profile pic")),
    "cake": Kind("food", "a cake with {colour} frosting", ("studio", "brick_wall"),
                 ("cake", "birthday cake", "dessert")),
    "fruit_bowl": Kind("food", "a {colour} bowl of fruit", ("studio", "brick_wall"),
                       ("fruit", "fruit bowl", "healthy breakfast")),
    "cat": Kind("animal", "a {colour} cat", ("grass_field", "studio", "forest"), ("cat", "my cat", "kitty")),
    "bird": Kind("animal", "a {colour} bird perched on a branch", ("sky", "forest", "grass_field"),
                 ("bird", "birdwatching", "little bird")),
    "mountains": Kind("landscape", "a mountain range with {colour}-tinted peaks", ("sky", "beach", "grass_field"),
                      ("mountains", "view", "hiking trip", "landscape")),
    "car": Kind("car", "a {colour} vintage car", ("beach", "night_city", "studio", "grass_field"),
                ("car", "my new car", "classic car")),
    "flower": Kind("plant", "a {colour} flower", ("grass_field", "studio", "forest", "sky"),
                   ("flower", "flowers", "spring")),
    "house": Kind("architecture", "a {colour} house with a pitched roof", ("grass_field", "forest", "beach"),
                  ("house", "home", "house for sale")),
}

#: subject colours; the last two are dull, a weakness of an ordinary scene
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (205, 40, 45),
    "orange": (240, 130, 30),
    "yellow": (245, 200, 40),
    "green": (55, 165, 70),
    "teal": (20, 155, 155),
    "blue": (40, 90, 200),
    "purple": (130, 60, 170),
    "pink": (235, 110, 160),
    "grey": (125, 125, 125),
    "brown": (115, 85, 60),
}
DULL_COLOURS = ("grey", "brown")
VIVID_COLOURS = tuple(c for c in COLOURS if c not in DULL_COLOURS)

BACKGROUNDS = ("sky", "grass_field", "beach", "studio", "brick_wall", "night_city", "forest")
LIGHTINGS = ("golden_hour", "daylight", "studio_soft", "overcast", "dim_evening")
FLAT_LIGHTINGS = ("overcast", "dim_evening")
GOOD_LIGHTINGS = tuple(light for light in LIGHTINGS if light not in FLAT_LIGHTINGS)

#: good placements; "small" is a weakness, "edge" and "cut_off" come from defects
GOOD_PLACEMENTS = ("centre", "thirds_left", "thirds_right", "close_up")
SIDES = ("left", "right", "top", "bottom")

#: aspect ratios (width / height) of ordinary photos, landscape orientations more common
ASPECTS = ((1.0, 0.25), (4 / 3, 0.2), (3 / 2, 0.2), (16 / 9, 0.1), (3 / 4, 0.1), (2 / 3, 0.1), (9 / 16, 0.05))
#: an image whose short side is below this is too small to use
SMALL_SIDE = 128
#: short-side ranges [lo, hi) and their weights: mostly 128-511 px, a few larger
SHORT_SIDES = (((SMALL_SIDE, 256), 0.3), ((256, 384), 0.3), ((384, 512), 0.25), ((512, 769), 0.15))
#: sizes of too_small images (short side < 128) and of extreme_aspect ones (ratio > 3, short
#: side >= 128, so that each is one defect only)
TINY_SIZES = ((64, 48), (48, 64), (96, 64), (80, 80), (120, 90), (100, 75), (48, 48), (112, 84))
BANNER_SIZES = ((900, 200), (728, 182), (1000, 250), (640, 160), (160, 600), (200, 800), (960, 240), (144, 576))


@dataclass(frozen=True)
class Scene:
    """Everything a picture shows, which the renderer turns into pixels and captions into words."""

    kind: str
    colour: str
    background: str
    lighting: str
    #: centre, thirds_left, thirds_right, close_up, small, edge (off_centre), cut_off
    placement: str
    #: which edge an "edge" or "cut_off" subject is pushed against, else None
    side: str | None
    width: int
    height: int
    weaknesses: tuple[str, ...]

    @property
    def concept(self) -> str:
        return KINDS[self.kind].concept

    @property
    def composed(self) -> bool:
        return not self.weaknesses


def sample_scene(rng: np.random.Generator, image_defects: tuple[str, ...], composed_share: float) -> Scene:
    """Draw one scene; composition and size defects override the placement and the size."""
    kind = _pick(rng, tuple(KINDS))
    weaknesses = () if rng.random() < composed_share else _pick_weaknesses(rng)
    colour = _pick(rng, DULL_COLOURS if "dull_colour" in weaknesses else VIVID_COLOURS)
    suited = KINDS[kind].suited
    unsuited = tuple(b for b in BACKGROUNDS if b not in suited)
    background = _pick(rng, unsuited if "mismatched_background" in weaknesses else suited)
    lighting = _pick(rng, FLAT_LIGHTINGS if "flat_lighting" in weaknesses else GOOD_LIGHTINGS)
    placement = "small" if "small_subject" in weaknesses else _pick(rng, GOOD_PLACEMENTS)
    side = None
    if "off_centre" in image_defects or "cut_off" in image_defects:
        placement = "edge" if "off_centre" in image_defects else "cut_off"
        side = _pick(rng, SIDES)
        weaknesses = tuple(w for w in weaknesses if w != "small_subject")  # no longer shown
    width, height = _sample_size(rng, image_defects)
    return Scene(kind, colour, background, lighting, placement, side, width, height, weaknesses)


def _pick_weaknesses(rng: np.random.Generator) -> tuple[str, ...]:
    """One weakness mostly, sometimes two or three: ordinary pictures are rarely all bad."""
    count = int(rng.choice([1, 2, 3], p=[0.65, 0.3, 0.05]))
    chosen = set(rng.choice(len(WEAKNESSES), size=count, replace=False).tolist())
    return tuple(w for i, w in enumerate(WEAKNESSES) if i in chosen)


def _sample_size(rng: np.random.Generator, image_defects: tuple[str, ...]) -> tuple[int, int]:
    if "too_small" in image_defects:
        return _pick(rng, TINY_SIZES)
    if "extreme_aspect" in image_defects:
        return _pick(rng, BANNER_SIZES)
    aspects, aspect_weights = zip(*ASPECTS)
    aspect = aspects[int(rng.choice(len(aspects), p=np.array(aspect_weights) / sum(aspect_weights)))]
    ranges, range_weights = zip(*SHORT_SIDES)
    lo, hi = ranges[int(rng.choice(len(ranges), p=np.array(range_weights) / sum(range_weights)))]
    short = int(rng.integers(lo, hi))
    long = int(round(short * max(aspect, 1 / aspect)))
    return (long, short) if aspect >= 1 else (short, long)


def _pick(rng: np.random.Generator, options: tuple):
    return options[int(rng.integers(len(options)))]
