"""CLIP-based judges (photogenic.clip): CLIP score (text faithfulness) and an aesthetic head
(visual appeal), on ``evaluate.judges.clip_model`` (a local folder in the embedded default's
world; a hub id where the hub is reachable) and ``evaluate.judges.aesthetic_head``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from photogenic.clip import AestheticHead, Clip, load_aesthetic_head, load_clip
from photogenic.errors import ConfigError
from photogenic.evaluation.judges.registry import TEXT_FAITHFULNESS, VISUAL_APPEAL, register_judge, tie_margin
from photogenic.evaluation.prompts import Prompt
from photogenic.evaluation.sampling import resolve_device

CLIP_KEY = "evaluate.judges.clip_model"
HEAD_KEY = "evaluate.judges.aesthetic_head"


class ClipScoreJudge:
    name = "clip_score"
    criterion = TEXT_FAITHFULNESS

    def __init__(self, clip: Clip, tie_margin: float = 0.5):
        self.clip = clip
        self.tie_margin = tie_margin

    def score(self, images: list[Image.Image], prompts: list[Prompt]) -> list[float]:
        cos = (self.clip.image_embeddings(images) * self.clip.text_embeddings([p.prompt for p in prompts])).sum(axis=1)
        return (100.0 * np.clip(cos, 0.0, None)).astype(float).tolist()


class AestheticJudge:
    name = "aesthetic"
    criterion = VISUAL_APPEAL

    def __init__(self, clip: Clip, head: AestheticHead, tie_margin: float = 0.05):
        self.clip = clip
        self.head = head
        self.tie_margin = tie_margin

    def score(self, images: list[Image.Image], prompts: list[Prompt]) -> list[float]:
        return self.head(self.clip.image_embeddings(images)).astype(float).tolist()


def _clip(settings: Any, judge: str) -> Clip:
    if not settings.clip_model:
        raise ConfigError(f"The {judge} judge needs a CLIP checkpoint: set {CLIP_KEY} to a local folder (or hub id) "
                          f"holding a transformers CLIPModel and its processor, or remove {judge!r} from "
                          "evaluate.judges.")
    return load_clip(settings.clip_model, CLIP_KEY, resolve_device(settings.device))


def _aesthetic(settings: Any) -> AestheticJudge:
    if not settings.aesthetic_head:
        raise ConfigError(f"The aesthetic judge needs the weights of an aesthetic head on CLIP image embeddings: "
                          f"set {HEAD_KEY} to a .safetensors or .pth file (a LAION aesthetic predictor's linear or "
                          "MLP layers), or remove 'aesthetic' from evaluate.judges.")
    clip = _clip(settings, "aesthetic")
    return AestheticJudge(clip, load_aesthetic_head(settings.aesthetic_head, HEAD_KEY, clip.embedding_dim),
                          tie_margin=tie_margin(settings, "aesthetic", 0.05))


register_judge("clip_score", lambda s: ClipScoreJudge(_clip(s, "clip_score"), tie_margin(s, "clip_score", 0.5)))
register_judge("aesthetic", _aesthetic)
