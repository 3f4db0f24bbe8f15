"""Worker-side functions of benchmarks/filter_speed.py (importable by spawned workers)."""

from __future__ import annotations

from typing import Any

import numpy as np

_SCORERS: list = []


def init(scorers: list) -> None:
    _SCORERS[:] = scorers


def decode(task: tuple[str, dict[str, Any]]) -> int:
    """Read and decode one image, nothing else: the ceiling any filter can reach."""
    from photogenic.dataset.store import Dataset

    path, row = task
    return int(np.asarray(Dataset(path).load_image(row)).size > 0)


def score_everything(task: tuple[str, list[dict[str, Any]]]) -> int:
    """The same scorers with no ordering and no early stop: every scorer on every image."""
    from photogenic.dataset.store import Dataset

    path, rows = task
    dataset = Dataset(path)
    images = [np.asarray(dataset.load_image(row)) for row in rows]
    for scorer in _SCORERS:
        columns = scorer.score(rows, images if scorer.needs_pixels else None)
        scorer.reasons(columns)
    return len(rows)
