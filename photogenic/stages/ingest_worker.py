"""The per-sample work of ingest that runs on the data plane's workers (decode, probe, hash).

Kept in its own small module so that workers import only what they need (Pillow, numpy), not
the config or orchestration layers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from photogenic.imaging.decode import ImageInfo, UnusableImage, probe
from photogenic.text import CleanCaption, clean_caption


@dataclass(frozen=True)
class ProbeTask:
    image: bytes | None
    caption: bytes | None
    max_pixels: int
    max_image_bytes: int
    max_caption_chars: int
    #: the caption's status when the reader left it unread (too large)
    caption_status: str | None = None


@dataclass(frozen=True)
class ProbeOutcome:
    sample_id: str | None
    length: int
    info: ImageInfo | None
    #: (reason_code, message) when the image is unusable
    problem: tuple[str, str] | None
    caption: CleanCaption


def run_probe(task: ProbeTask) -> ProbeOutcome:
    caption = CleanCaption(None, task.caption_status, None) if task.caption_status else \
        clean_caption(task.caption, task.max_caption_chars)
    if task.image is None:
        return ProbeOutcome(None, 0, None, None, caption)
    data = task.image
    sample_id = hashlib.sha256(data).hexdigest()
    if len(data) > task.max_image_bytes:
        problem = ("file_too_large", f"{len(data)} bytes exceeds ingest.max_image_bytes={task.max_image_bytes}")
        return ProbeOutcome(sample_id, len(data), None, problem, caption)
    try:
        info = probe(data, task.max_pixels)
    except UnusableImage as exc:
        return ProbeOutcome(sample_id, len(data), None, (exc.code, str(exc)), caption)
    return ProbeOutcome(sample_id, len(data), info, None, caption)


@dataclass(frozen=True)
class ProbeChunk:
    """The data plane's step: ``probe`` on each task of a chunk; an outcome already known (an
    interrupted run's, from its part) passes through."""

    probe: Callable[[ProbeTask], ProbeOutcome] = run_probe

    def __call__(self, items: list[ProbeTask | ProbeOutcome]) -> list[ProbeOutcome]:
        return [item if isinstance(item, ProbeOutcome) else self.probe(item) for item in items]
