"""Captions: the short alt-text a web page carries, and the full description only the truth knows.

The alt-text is what the pipeline sees: short, often vague ("red car", "IMG_2041"), sometimes
broken (empty, not UTF-8). The scene caption is what a careful human captioner would write,
complete and faithful to the picture; simulated annotators and benchmarks use it.
"""

from __future__ import annotations

import re

import numpy as np

from photogenic.samplepool.world import KINDS, Scene

LIGHTING_PHRASES = {
    "golden_hour": "in warm golden-hour light",
    "daylight": "in bright daylight",
    "studio_soft": "in soft, even light",
    "overcast": "under a flat overcast sky",
    "dim_evening": "in dim evening light",
}
BACKGROUND_PHRASES = {
    "sky": "against a blue sky with white clouds",
    "grass_field": "in a green grass field",
    "beach": "on a sandy beach by the sea",
    "studio": "in front of a plain studio backdrop",
    "brick_wall": "in front of a red brick wall",
    "night_city": "in front of a city skyline at night",
    "forest": "in a pine forest",
}
#: a landscape is the scene, so its background is where it is seen from or behind
LANDSCAPE_BACKGROUND_PHRASES = {
    "sky": "under a blue sky with white clouds",
    "grass_field": "beyond a green grass field",
    "beach": "seen from a sandy beach",
    "studio": "painted on a plain studio backdrop",
    "brick_wall": "painted on a red brick wall",
    "night_city": "behind a city skyline at night",
    "forest": "above a pine forest",
}
PLACEMENT_PHRASES = {
    "centre": "in the centre of the frame",
    "thirds_left": "on the left third of the frame",
    "thirds_right": "on the right third of the frame",
    "close_up": "filling the frame",
    "small": "small in the frame",
    "edge": "pushed against the {side} edge of the frame",
    "cut_off": "cut off by the {side} edge of the frame",
}
ALT_PLACES = {
    "sky": "outside",
    "grass_field": "in the grass",
    "beach": "on the beach",
    "studio": "in the studio",
    "brick_wall": "by the wall",
    "night_city": "in the city at night",
    "forest": "in the woods",
}
ACCENTED_WORDS = ("café", "crème brûlée", "déjà vu", "Zürich", "São Paulo", "piñata", "naïve")
EMPTY_CAPTIONS = ("", " ", "\n", "  \t ")


def scene_caption(scene: Scene) -> str:
    """e.g. "a close-up photo of a red vintage car filling the frame on a sandy beach by the sea
    in warm golden-hour light"."""
    framing = {"close_up": "a close-up photo", "small": "a wide shot"}.get(scene.placement, "a photo")
    subject = KINDS[scene.kind].phrase.format(colour=scene.colour)
    where = PLACEMENT_PHRASES[scene.placement].format(side=scene.side)
    backgrounds = LANDSCAPE_BACKGROUND_PHRASES if scene.concept == "landscape" else BACKGROUND_PHRASES
    return _articles(f"{framing} of {subject} {where} {backgrounds[scene.background]} {LIGHTING_PHRASES[scene.lighting]}")


def _articles(text: str) -> str:
    """'a orange car' -> 'an orange car'."""
    return re.sub(r"\b([Aa]) ([aeiouAEIOU])", r"\1n \2", text)


def alt_text(scene: Scene, rng: np.random.Generator) -> str:
    """Web alt-text: a noun, a colour and noun, a place, a camera file name, hashtags, ..."""
    nouns = KINDS[scene.kind].alt_nouns
    noun, simple = _pick(rng, nouns), nouns[0]
    number = int(rng.integers(10_000))
    forms = (
        lambda: noun,
        lambda: f"{scene.colour} {simple}",
        lambda: _articles(f"a {simple} {ALT_PLACES[scene.background]}"),
        lambda: _pick(rng, (f"IMG_{number:04d}", f"DSC{number:05d}", f"{simple.replace(' ', '_')}_{number}.jpg",
                            "image", "untitled", "photo")),
        lambda: f"#{simple.replace(' ', '')} #photooftheday #{_pick(rng, ('nofilter', 'instagood', 'weekend'))}",
        lambda: f"{_pick(rng, ('beautiful', 'lovely', 'amazing', 'nice'))} {simple}",
        lambda: f"{simple} - buy online, best price",
    )
    weights = np.array([0.2, 0.2, 0.2, 0.15, 0.1, 0.1, 0.05])
    return forms[int(rng.choice(len(forms), p=weights / weights.sum()))]()


def encode_caption(text: str, defects: tuple[str, ...], rng: np.random.Generator) -> bytes:
    """The ``.txt`` bytes; caption defects give whitespace or bytes that are not valid UTF-8."""
    if "empty_caption" in defects:
        return _pick(rng, EMPTY_CAPTIONS).encode()
    if "non_utf8_caption" in defects:
        return _mis_encoded(text, rng)
    return text.encode("utf-8")


def _mis_encoded(text: str, rng: np.random.Generator) -> bytes:
    """Text from a legacy encoding, or binary junk. Every variant is invalid UTF-8 by
    construction: a Latin-1 accented letter followed by ASCII or the end, a cp1252 curly quote
    (a bare continuation byte), a UTF-16 byte-order mark, or a leading 0xFF."""
    variant = int(rng.integers(4))
    if variant == 0:
        return f"{text} {_pick(rng, ACCENTED_WORDS)}".encode("latin-1")
    if variant == 1:
        return f"\u201c{text}\u201d".encode("cp1252")
    if variant == 2:
        return b"\xff\xfe" + text.encode("utf-16-le")
    return b"\xff" + rng.integers(0, 256, size=int(rng.integers(8, 64)), dtype=np.uint8).tobytes()


def _pick(rng: np.random.Generator, options: tuple):
    return options[int(rng.integers(len(options)))]
