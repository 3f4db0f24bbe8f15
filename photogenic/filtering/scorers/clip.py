"""Scorers on CLIP embeddings, through transformers, for a configured checkpoint
(filter.clip.model); off without one, and the funnel report says so.

- ``clip``: the image-caption cosine similarity (Emu's CLIP-score filter). A row without a
  caption gets no score and is not judged by it.
- ``aesthetic``: the LAION-style aesthetic predictor, an MLP head (filter.aesthetic.head) on the
  unit-length CLIP image embedding, predicting a 1-10 rating.

The model loads once per worker process, on first use; the two scorers share it.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from photogenic.config import AestheticFilterConfig, ClipFilterConfig
from photogenic.errors import ConfigError
from photogenic.filtering.scorer import Columns, Scorer
from photogenic.scoring.clip import load_clip


class ClipScoreScorer(Scorer):
    name = "clip"
    version = "1"
    needs_pixels = True

    config: ClipFilterConfig

    def __init__(self, config: ClipFilterConfig, checkpoint: str):
        super().__init__(config)
        self.checkpoint = checkpoint
        self.cost_ms = config.cost_ms

    def score(self, rows: list[dict[str, Any]], images: list[np.ndarray] | None) -> Columns:
        clip = load_clip(self.checkpoint)
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
        return {**super().describe(), "checkpoint": self.checkpoint,
                "column_thresholds": {self.column(): {"min": self.config.min_score}}}


class AestheticScorer(Scorer):
    name = "aesthetic"
    version = "1"
    needs_pixels = True

    config: AestheticFilterConfig

    def __init__(self, config: AestheticFilterConfig, checkpoint: str, head: str, cost_ms: float):
        super().__init__(config)
        self.checkpoint, self.head_path = checkpoint, head
        self.cost_ms = cost_ms + 0.1  # the CLIP pass, shared with the clip scorer, plus the head
        self._head = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_head": None}

    def score(self, rows: list[dict[str, Any]], images: list[np.ndarray] | None) -> Columns:
        import torch

        clip = load_clip(self.checkpoint)
        if self._head is None:
            self._head = load_aesthetic_head(self.head_path, clip.embedding_dim)
        embeddings = clip.image_embeddings(images) if images else np.zeros((0, clip.embedding_dim), np.float32)
        with torch.inference_mode():
            predicted = self._head(torch.from_numpy(embeddings)).squeeze(1).numpy()
        return {self.column(): [float(v) for v in predicted]}

    def reasons(self, columns: Columns) -> list[str | None]:
        limit = self.config.min_score
        return [f"predicted aesthetic score {s:.2f} < filter.aesthetic.min_score={limit}"
                if limit is not None and s < limit else None for s in columns[self.column()]]

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "checkpoint": self.checkpoint, "head": self.head_path,
                "column_thresholds": {self.column(): {"min": self.config.min_score}}}


def aesthetic_mlp(dim: int):
    """The LAION improved-aesthetic-predictor head (its ``MLP`` class, state-dict keys
    ``layers.{0,2,4,6,7}``): dropouts between the linear layers, no activations."""
    from torch import nn

    class AestheticMLP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = nn.Sequential(
                nn.Linear(dim, 1024), nn.Dropout(0.2), nn.Linear(1024, 128), nn.Dropout(0.2),
                nn.Linear(128, 64), nn.Dropout(0.1), nn.Linear(64, 16), nn.Linear(16, 1),
            )

        def forward(self, x):
            return self.layers(x)

    return AestheticMLP()


def load_aesthetic_head(path: str, dim: int):
    import torch

    if not os.path.exists(path):
        raise ConfigError(f"The aesthetic head {path!r} (filter.aesthetic.head) does not exist. Set "
                          "filter.aesthetic.head to the MLP's weights file, or to null to run without it.")
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        state = load_file(path)
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    head = aesthetic_mlp(dim)
    try:
        head.load_state_dict(state)
    except RuntimeError as exc:
        raise ConfigError(
            f"The aesthetic head {path!r} (filter.aesthetic.head) does not fit CLIP embeddings of size {dim} "
            f"from filter.clip.model: {str(exc).splitlines()[0]}"
        ) from None
    return head.eval()
