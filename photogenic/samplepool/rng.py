"""Independent random streams, each derived from (purpose, seed, sample index) alone.

Deriving every stream from its coordinates, never from global or sequential state, is what
makes a sample's bytes independent of which worker renders it and in which order. Each
purpose has its own stream so that, say, a near-duplicate can re-render its original's scene
without replaying that original's caption or defect draws.
"""

from __future__ import annotations

import numpy as np

# The purpose comes first in the entropy so that streams of different purposes never collide
# (SeedSequence pads short entropy with zeros: [p, seed] and [p, seed, 0] are the same).
PLAN = 0
SCENE = 1
RENDER = 2
DEFECT = 3
CAPTION = 4
META = 5


def stream(purpose: int, seed: int, index: int = 0) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([purpose, seed, index])))
