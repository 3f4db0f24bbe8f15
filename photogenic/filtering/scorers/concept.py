"""Concept balancing (Emu balanced its candidates across visual concepts: portrait, food,
animal, landscape, car, ...): every row gets a concept, then no concept may hold more than
filter.concept.max_share of the candidate pool; an over-represented concept keeps its best rows
by filter.concept.keep_best_by.

The concept comes from CLIP zero-shot over filter.concept.concepts when filter.clip.model is
set, else from a source metadata field (filter.concept.metadata_key in img2dataset's .json,
like a real source's ``category`` column; the sample pool writes one). Rows without a concept
("unknown") are kept and not balanced: a source without the field must not lose most of its
pool to a quota. With k concepts present no quota can go below an equal split, so the share
used is at least 1/k.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from typing import Any

import numpy as np

from photogenic.config import ConceptFilterConfig, RunConfig
from photogenic.filtering.registry import register_scorer
from photogenic.filtering.scorer import Columns, GlobalScorer, Scorer
from photogenic.filtering.scorers.clip import clip_checkpoint, worker_clip

UNKNOWN = "unknown"


@register_scorer
class ConceptBalanceScorer(GlobalScorer):
    name = "concept"
    version = "1"
    decision_rank = 1  # after near-duplicates: a copy must not take a place in its concept's quota

    config: ConceptFilterConfig

    def __init__(self, config: ConceptFilterConfig, clip_checkpoint: str | None = None, clip_cost_ms: float = 0.0):
        super().__init__(config)
        self.checkpoint = clip_checkpoint
        # zero-shot needs the image (and a CLIP pass); the metadata field does not
        self.needs_pixels = clip_checkpoint is not None
        self.cost_ms = clip_cost_ms + 0.2 if self.needs_pixels else 0.002
        self._prompts = None

    @classmethod
    def from_config(cls, config: RunConfig, check: bool = True) -> Scorer | None:
        if not config.filter.concept.enabled:
            return None
        return cls(config.filter.concept, clip_checkpoint(config, check), config.filter.clip.cost_ms)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_prompts": None}

    def score(self, rows: list[dict[str, Any]], images: list[np.ndarray] | None) -> Columns:
        if self.checkpoint is None:
            return {self.column(): [self._from_metadata(row) for row in rows]}
        clip = worker_clip(self.checkpoint)
        if self._prompts is None:
            self._prompts = clip.text_embeddings([self.config.prompt.format(concept=c) for c in self.config.concepts])
        similarity = clip.image_embeddings(images) @ self._prompts.T if images else np.zeros((0, 1))
        return {self.column(): [self.config.concepts[int(i)] for i in similarity.argmax(axis=1)]}

    def _from_metadata(self, row: dict[str, Any]) -> str:
        try:
            meta = json.loads(row.get("source_meta") or "{}")
        except ValueError:
            return UNKNOWN
        value = meta.get(self.config.metadata_key) if isinstance(meta, dict) else None
        return str(value).strip().lower() if value not in (None, "") else UNKNOWN

    def reasons(self, columns: Columns) -> list[str | None]:
        return [None] * len(columns[self.column()])  # the quota is pool-wide: see decide()

    def decide(self, survivors: list[dict[str, Any]]) -> tuple[Columns, list[str | None]]:
        concepts = [row[self.column()] or UNKNOWN for row in survivors]
        counts = Counter(concepts)
        unknown = counts.pop(UNKNOWN, 0)
        cap = concept_cap(counts, self.config.max_share, unbalanced=unknown)
        best = self.config.keep_best_by
        members: dict[str, list[int]] = defaultdict(list)
        for i, concept in enumerate(concepts):
            members[concept].append(i)
        reasons: list[str | None] = [None] * len(survivors)
        for concept, index in members.items():
            if concept == UNKNOWN or len(index) <= cap:
                continue
            # best first; rows missing the score go last; ties keep pool order
            ranked = sorted(index, key=lambda i: (-_value(survivors[i], best), i))
            for i in ranked[cap:]:
                reasons[i] = (f"concept {concept!r} over its quota: {len(index)} candidates, at most {cap} "
                              f"(filter.concept.max_share={self.config.max_share}); "
                              f"better ones kept by {best or 'position'}")
        return {}, reasons


def concept_cap(counts: Counter, max_share: float, unbalanced: int = 0) -> int:
    """The largest per-concept count such that no capped concept exceeds ``max_share`` (at
    least an equal split) of the capped pool, which also holds ``unbalanced`` rows: capping
    shrinks the pool, so iterate to the fixed point (the cap only decreases)."""
    if not counts:
        return 0
    share = max(max_share, 1 / len(counts))
    cap = max(counts.values())
    while True:
        total = unbalanced + sum(min(c, cap) for c in counts.values())
        new = max(1, math.floor(share * total))
        if new >= cap:
            return cap
        cap = new


def _value(row: dict[str, Any], column: str | None) -> float:
    value = row.get(column) if column else None
    return float(value) if value is not None else -math.inf
