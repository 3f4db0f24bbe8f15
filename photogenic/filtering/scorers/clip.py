"""Scorers on CLIP embeddings (photogenic.clip), for a configured checkpoint (filter.clip.model);
off without one, and the funnel report says so.

- ``clip``: the image-caption cosine similarity (Emu's CLIP-score filter). A row without a
  caption gets no score and is not judged by it.
- ``aesthetic``: the LAION-style aesthetic predictor, an MLP head (filter.aesthetic.head) on the
  unit-length CLIP image embedding, predicting a 1-10 rating.

The model loads once per worker process, on first use; the two scorers share it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from photogenic.clip import Clip, check_checkpoint, load_aesthetic_head, load_clip, projection_dim, resolve_checkpoint
from photogenic.config import AestheticFilterConfig, ClipFilterConfig, RunConfig
from photogenic.filtering.registry import register_scorer
from photogenic.filtering.scorer import Columns, Scorer

CLIP_KEY = "filter.clip.model"
HEAD_KEY = "filter.aesthetic.head"


def worker_clip(checkpoint: str) -> Clip:
    """The filter's CLIP, on one thread: the cascade already runs one worker process per core."""
    import torch

    torch.set_num_threads(1)
    return load_clip(checkpoint, CLIP_KEY)


def clip_checkpoint(config: RunConfig, check: bool) -> str | None:
    """filter.clip.model, resolved under data.root (and checked loadable when ``check``)."""
    model = config.filter.clip.model
    if not model:
        return None
    return check_checkpoint(model, CLIP_KEY, config.data.root) if check else resolve_checkpoint(model, config.data.root)


@register_scorer
class ClipScoreScorer(Scorer):
    name = "clip"
    version = "1"
    needs_pixels = True
    nullable_parts = (None,)  # uncaptioned rows get no score
    bounded_by = {"min_score": (None, "min")}

    config: ClipFilterConfig

    def __init__(self, config: ClipFilterConfig, checkpoint: str):
        super().__init__(config)
        self.checkpoint = checkpoint
        self.cost_ms = config.cost_ms

    @classmethod
    def from_config(cls, config: RunConfig, check: bool = True) -> Scorer | None:
        checkpoint = clip_checkpoint(config, check)
        return cls(config.filter.clip, checkpoint) if checkpoint else None

    @classmethod
    def off_reason(cls, config: RunConfig) -> str | None:
        if config.filter.clip.model:
            return None
        return f"no CLIP checkpoint configured ({CLIP_KEY}): image-caption CLIP score not computed"

    def score(self, rows: list[dict[str, Any]], images: list[np.ndarray] | None) -> Columns:
        clip = worker_clip(self.checkpoint)
        scores: list[float | None] = [None] * len(rows)
        captioned = [i for i, row in enumerate(rows) if (row.get("caption") or "").strip()]
        for start in range(0, len(captioned), self.config.batch_size):
            index = captioned[start:start + self.config.batch_size]
            image = clip.image_embeddings([images[i] for i in index])
            text = clip.text_embeddings([rows[i]["caption"] for i in index])
            for i, value in zip(index, (image * text).sum(axis=1)):
                scores[i] = float(value)
        return {self.column(): scores}

    def reasons(self, columns: Columns) -> list[str | None]:
        limit = self.config.min_score
        return [f"image-caption CLIP score {s:.3f} < filter.clip.min_score={limit}"
                if limit is not None and s is not None and s < limit else None for s in columns[self.column()]]

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "checkpoint": self.checkpoint}


@register_scorer
class AestheticScorer(Scorer):
    name = "aesthetic"
    version = "1"
    needs_pixels = True
    bounded_by = {"min_score": (None, "min")}

    config: AestheticFilterConfig

    def __init__(self, config: AestheticFilterConfig, checkpoint: str, head: str, cost_ms: float):
        super().__init__(config)
        self.checkpoint, self.head_path = checkpoint, head
        self.cost_ms = cost_ms + 0.1  # the CLIP pass, shared with the clip scorer, plus the head
        self._head = None

    @classmethod
    def from_config(cls, config: RunConfig, check: bool = True) -> Scorer | None:
        checkpoint = clip_checkpoint(config, check)
        if not (checkpoint and config.filter.aesthetic.head):
            return None
        head = resolve_checkpoint(config.filter.aesthetic.head, config.data.root)
        if check:  # fails here, early, if it cannot load or does not fit the CLIP model
            load_aesthetic_head(head, HEAD_KEY, projection_dim(checkpoint))
        return cls(config.filter.aesthetic, checkpoint, head, config.filter.clip.cost_ms)

    @classmethod
    def off_reason(cls, config: RunConfig) -> str | None:
        if config.filter.clip.model and config.filter.aesthetic.head:
            return None
        missing = f"{CLIP_KEY} and {HEAD_KEY}" if not config.filter.clip.model else HEAD_KEY
        return f"no aesthetic predictor configured ({missing}): aesthetic score not computed"

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_head": None}

    def score(self, rows: list[dict[str, Any]], images: list[np.ndarray] | None) -> Columns:
        clip = worker_clip(self.checkpoint)
        if self._head is None:
            self._head = load_aesthetic_head(self.head_path, HEAD_KEY, clip.embedding_dim)
        return {self.column(): [float(v) for v in self._head(clip.image_embeddings(images or []))]}

    def reasons(self, columns: Columns) -> list[str | None]:
        limit = self.config.min_score
        return [f"predicted aesthetic score {s:.2f} < filter.aesthetic.min_score={limit}"
                if limit is not None and s < limit else None for s in columns[self.column()]]

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "checkpoint": self.checkpoint, "head": self.head_path}

