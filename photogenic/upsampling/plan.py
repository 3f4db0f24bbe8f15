"""Which rows grow, by how much, and with which seed."""

from __future__ import annotations

import hashlib
import math


def needs_upsampling(width: int, height: int, min_short_side: int) -> bool:
    return min(width, height) < min_short_side


def sample_seed(seed: int, sample_id: str) -> int:
    """A 63-bit seed from (configured seed, sample_id) alone: the same sample gets the same
    noise whatever batch, worker or order it is processed in."""
    digest = hashlib.sha256(f"{seed}:{sample_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & (2**63 - 1)


def resampled_size(width: int, height: int, min_short_side: int) -> tuple[int, int]:
    """The size whose short side is exactly ``min_short_side``, aspect ratio kept."""
    scale = min_short_side / min(width, height)
    if width <= height:
        return min_short_side, max(min_short_side, round(height * scale))
    return max(min_short_side, round(width * scale)), min_short_side


def passes_needed(short_side: int, min_short_side: int, native_scale: int) -> int:
    """Passes of a fixed-factor upscaler that bring ``short_side`` to at least ``min_short_side``."""
    if short_side >= min_short_side:
        return 0
    return max(1, math.ceil(math.log(min_short_side / short_side) / math.log(native_scale) - 1e-12))
