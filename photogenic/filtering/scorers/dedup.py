"""Near-duplicates: hash every survivor in the workers, then cluster the whole pool at once and
keep the best-scoring member of each cluster (see photogenic.imaging.phash for the method).

Two hashes per image: the grey DCT hash, and the same hash of its colour layout (CIELAB a*/b*).
Rows are one cluster when they are linked in the grey hash (within filter.dedup.max_distance)
and in the colour hash (within filter.dedup.max_chroma_distance). The grey hash alone cannot
tell a cropped re-post from another render of the same scene template in another colour, which
forced a 2-bit threshold that joined a fifth of the planted copies. Calibration on the
1,000-sample pool (40 planted near copies, 469k pairs of distinct scenes):

    grey bits / colour bits    2 / -   4 / -   6 / -   4 / 8   6 / 10   8 / 10
    copies joined               18%     48%     75%     38%     68%      80%
    pairs of strangers joined     6      12      44       1       5       14

Strangers grow with the square of the pool: on the 4,000-sample pool 6 / 10 merged enough
distinct scenes to cost 8 points of photogenic recall (0.956 -> 0.878). The default 4 / 8 joins
twice as many copies as the grey hash alone at 2 bits with a sixth of its strangers. (The
clusters are the groups linked in both hashes, each found transitively on its own: a slight
over-merge against clustering on pairs close in both, which the numbers above count.)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from photogenic.config import DedupFilterConfig
from photogenic.filtering.registry import register_scorer
from photogenic.filtering.scorer import Columns, GlobalScorer
from photogenic.imaging.phash import chroma_phash_many, find_near_duplicates, keep_best, phash_many


@register_scorer
class DuplicateScorer(GlobalScorer):
    name = "dedup"
    version = "2"
    unique_parts = ("cluster",)
    # mostly the CIELAB conversion of the full image for the colour hash (filter_speed.py measures it)
    cost_ms = 12.0
    needs_pixels = True

    config: DedupFilterConfig

    def score(self, rows: list[dict[str, Any]], images: list[np.ndarray] | None) -> Columns:
        pictures = [Image.fromarray(im) for im in images]
        return {self.column("hash"): _signed(phash_many(pictures)),
                self.column("chroma_hash"): _signed(chroma_phash_many(pictures))}

    def reasons(self, columns: Columns) -> list[str | None]:
        return [None] * len(columns[self.column("hash")])  # the decision is pool-wide: see decide()

    def decide(self, survivors: list[dict[str, Any]]) -> tuple[Columns, list[str | None]]:
        best = self.config.keep_best_by
        scores = np.zeros(len(survivors))
        if best and survivors and best in survivors[0]:
            scores = np.array([row[best] if row[best] is not None else -np.inf for row in survivors], dtype=float)
        cluster_id = find_near_duplicates(self._hashes(survivors, "hash"), scores,
                                          max_distance=self.config.max_distance).cluster_id
        within = f"phash within {self.config.max_distance} bits"
        if self.config.max_chroma_distance is not None:
            chroma = find_near_duplicates(self._hashes(survivors, "chroma_hash"), scores,
                                          max_distance=self.config.max_chroma_distance).cluster_id
            cluster_id = _intersect(cluster_id, chroma)
            within += f", colour phash within {self.config.max_chroma_distance}"
        keep = keep_best(cluster_id, scores)
        ids = [row["sample_id"] for row in survivors]
        keepers = {c: i for i, (c, kept) in enumerate(zip(cluster_id, keep)) if kept}
        reasons = [
            None if kept else f"near-duplicate of {ids[keepers[c]]} ({within}; "
            f"the kept one scores higher by {best or 'position'})"
            for c, kept in zip(cluster_id, keep)
        ]
        return {self.column("cluster"): [ids[c] for c in cluster_id]}, reasons

    def _hashes(self, rows: list[dict[str, Any]], part: str) -> np.ndarray:
        return np.array([row[self.column(part)] for row in rows], dtype=np.int64).view(np.uint64)


def _signed(hashes: np.ndarray) -> list[int]:
    # stored as signed int64 (Parquet has no unsigned 64-bit statistics worth having)
    return [int(h) for h in hashes.astype(np.uint64).view(np.int64)]


def _intersect(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Rows share a cluster when they share one in both clusterings; a cluster's id is its
    smallest index, as find_near_duplicates gives it."""
    smallest: dict[tuple[int, int], int] = {}
    return np.array([smallest.setdefault((int(a), int(b)), i) for i, (a, b) in enumerate(zip(first, second))],
                    dtype=np.int64)

