"""The validation split: a pure function of the sample_id (and a salt), never of the other rows,
so adding or removing rows never moves an existing sample between train and validation."""

from __future__ import annotations

import hashlib

TRAIN = "train"
VALIDATION = "validation"


def split_of(sample_id: str, share: float, salt: str) -> str:
    digest = hashlib.sha256(f"{salt}:{sample_id}".encode()).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64  # uniform in [0, 1)
    return VALIDATION if position < share else TRAIN
