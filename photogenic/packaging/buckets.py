"""Aspect-ratio buckets, as SDXL trains: a fixed list of sizes with about the same pixel count
(at most resolution², sides multiples of a step), and each image goes to the bucket nearest its
aspect ratio, so nothing is squashed and little is cropped.

Every bucket holds at most resolution² pixels and the nearest bucket is taken in log-aspect
space; together these mean an image whose short side is at least ``resolution`` always covers
its bucket without being enlarged (the upsample stage guarantees that short side), which the
training set's quality gate checks through ``resize_scale <= 1``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Bucket:
    width: int
    height: int

    @property
    def aspect(self) -> float:
        return self.width / self.height

    @property
    def name(self) -> str:
        return f"{self.width}x{self.height}"


def make_buckets(resolution: int, step: int, max_aspect_ratio: float) -> list[Bucket]:
    """The square bucket, then for each width above it (in steps) the tallest height that keeps
    the area within resolution²; each landscape bucket also as its portrait transpose."""
    area = resolution * resolution
    side = max(step, resolution // step * step)
    landscape = {Bucket(side, side)}
    width = side + step
    while True:
        height = area // width // step * step
        if height < step or width / height > max_aspect_ratio:
            break
        landscape.add(Bucket(width, height))
        width += step
    # of several widths over one height keep the widest (the closest to resolution² pixels)
    widest: dict[int, Bucket] = {}
    for bucket in sorted(landscape):
        widest[bucket.height] = bucket
    chosen = set(widest.values())
    return sorted(chosen | {Bucket(b.height, b.width) for b in chosen}, key=lambda b: (b.aspect, b.width))


def nearest_bucket(width: int, height: int, buckets: list[Bucket]) -> Bucket:
    """The bucket whose aspect ratio is nearest (in log space) to width/height; ties go to
    the earlier bucket in the list, so the choice is deterministic."""
    aspect = math.log(width / height)
    return min(buckets, key=lambda b: abs(math.log(b.aspect) - aspect))


def cover_scale(width: int, height: int, bucket: Bucket) -> float:
    """The factor that makes (width, height) just cover the bucket."""
    return max(bucket.width / width, bucket.height / height)
