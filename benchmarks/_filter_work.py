"""Worker-side steps of benchmarks/filter_speed.py (importable by name by the data plane's workers)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Decode:
    """Read and decode each image of a chunk, nothing else: the ceiling any filter can reach."""

    path: str

    def __call__(self, rows: list[dict[str, Any]]) -> list[int]:
        from photogenic.dataset.store import Dataset

        dataset = Dataset(self.path)
        return [int(np.asarray(dataset.load_image(row)).size > 0) for row in rows]
