"""Near-duplicates: hash every survivor in the workers, then cluster the whole pool at once and
keep the best-scoring member of each cluster (see photogenic.scoring.dedup for the method and
its calibration)."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from photogenic.config import DedupFilterConfig
from photogenic.filtering.scorer import Columns, GlobalScorer
from photogenic.scoring.dedup import find_near_duplicates, phash


class DuplicateScorer(GlobalScorer):
    name = "dedup"
    version = "1"
    cost_ms = 0.3
    needs_pixels = True

    config: DedupFilterConfig

    def score(self, rows: list[dict[str, Any]], images: list[np.ndarray] | None) -> Columns:
        # stored as signed int64 (Parquet has no unsigned 64-bit statistics worth having)
        return {self.column("hash"): [int(np.uint64(phash(Image.fromarray(im))).view(np.int64)) for im in images]}

    def reasons(self, columns: Columns) -> list[str | None]:
        return [None] * len(columns[self.column("hash")])  # the decision is pool-wide: see decide()

    def decide(self, survivors: list[dict[str, Any]]) -> tuple[Columns, list[str | None]]:
        hashes = np.array([row[self.column("hash")] for row in survivors], dtype=np.int64).view(np.uint64)
        best = self.config.keep_best_by
        scores = None
        if best and survivors and best in survivors[0]:
            scores = np.array([row[best] if row[best] is not None else -np.inf for row in survivors], dtype=float)
        clusters = find_near_duplicates(hashes, scores, max_distance=self.config.max_distance)
        ids = [row["sample_id"] for row in survivors]
        representative = [ids[c] for c in clusters.cluster_id]
        keepers = {c: i for i, (c, keep) in enumerate(zip(clusters.cluster_id, clusters.keep)) if keep}
        reasons = [
            None if keep else f"near-duplicate of {ids[keepers[c]]} (phash within {self.config.max_distance} bits; "
            f"the kept one scores higher by {best or 'position'})"
            for c, keep in zip(clusters.cluster_id, clusters.keep)
        ]
        return {self.column("cluster"): representative}, reasons

