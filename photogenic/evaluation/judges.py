"""Automated judges: one score per image, higher is better; pairs are compared on it.

A judge has a ``name``, the ``criterion`` it stands in for (``visual_appeal`` or
``text_faithfulness``, Emu's two questions), a ``tie_margin`` (score differences within it are
ties: no judge should call a winner on noise) and ``score(images, prompts)`` returning one float
per image, NaN where it abstains (the scene checker on a free-text prompt). Judges are built by
name from the config (``evaluate.judges``) through ``JUDGES``; ``register_judge`` adds one (the
aesthetic scorer of the auto-filter, a human-preference model) without touching this module.

Built in:

=================  =================  ======================================================
name               criterion          what it measures
=================  =================  ======================================================
technical_quality  visual_appeal      the auto-filter's weight-free technical quality
                                      (``photogenic.scoring.technical``: sharpness, noise,
                                      exposure, contrast, colourfulness, composition)
aesthetic          visual_appeal      a LAION-style aesthetic head on CLIP image embeddings
                                      (needs ``clip_model`` and ``aesthetic_head``)
scene_attributes   text_faithfulness  colour, placement and background named by a
                                      sample-world prompt, measured in pixels
                                      (``photogenic.evaluation.scene_check``)
subject_kind       text_faithfulness  the probability that the subject is the kind a
                                      sample-world prompt names, from a small classifier
                                      trained on a pool of the sample world
                                      (``photogenic.evaluation.kind_check``)
clip_score         text_faithfulness  100 · cos(CLIP image, CLIP text), floored at 0
                                      (needs ``clip_model``)
=================  =================  ======================================================
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
from PIL import Image

from photogenic.errors import ConfigError
from photogenic.evaluation.prompts import Prompt

VISUAL_APPEAL = "visual_appeal"
TEXT_FAITHFULNESS = "text_faithfulness"
CRITERIA = (VISUAL_APPEAL, TEXT_FAITHFULNESS)


class Judge(Protocol):
    name: str
    criterion: str
    tie_margin: float

    def score(self, images: list[Image.Image], prompts: list[Prompt]) -> list[float]: ...


class TechnicalQualityJudge:
    name = "technical_quality"
    criterion = VISUAL_APPEAL

    def __init__(self, tie_margin: float = 0.01):
        self.tie_margin = tie_margin

    def score(self, images: list[Image.Image], prompts: list[Prompt]) -> list[float]:
        from photogenic.scoring.technical import measure_all

        return [float(measure_all(image.convert("RGB"))["technical_quality"]) for image in images]


class SceneAttributeJudge:
    name = "scene_attributes"
    criterion = TEXT_FAITHFULNESS

    def __init__(self, tie_margin: float = 0.02):
        self.tie_margin = tie_margin

    def score(self, images: list[Image.Image], prompts: list[Prompt]) -> list[float]:
        from photogenic.evaluation.scene_check import scene_attribute_score

        return [scene_attribute_score(image, prompt) for image, prompt in zip(images, prompts)]


class SubjectKindJudge:
    name = "subject_kind"
    criterion = TEXT_FAITHFULNESS

    def __init__(self, tie_margin: float = 0.05):
        self.tie_margin = tie_margin

    def score(self, images: list[Image.Image], prompts: list[Prompt]) -> list[float]:
        from photogenic.evaluation.kind_check import subject_kind_scores

        return subject_kind_scores(images, prompts)


#: name -> factory(judges config section) -> Judge
JUDGES: dict[str, Callable[[Any], Judge]] = {}


def register_judge(name: str, factory: Callable[[Any], Judge]) -> None:
    JUDGES[name] = factory


def _clip(settings: Any, judge: str):
    from photogenic.evaluation.clip_judges import ClipBackbone

    if not settings.clip_model:
        raise ConfigError(f"The {judge} judge needs a CLIP checkpoint: set evaluate.judges.clip_model to a local "
                          "folder (or hub id) holding a transformers CLIPModel and its processor, or remove "
                          f"{judge!r} from evaluate.judges.")
    return ClipBackbone.load(settings.clip_model, device=settings.device)


def _margin(settings: Any, name: str, default: float) -> float:
    return float(settings.tie_margins.get(name, default))


def _clip_score(settings: Any) -> Judge:
    from photogenic.evaluation.clip_judges import ClipScoreJudge

    return ClipScoreJudge(_clip(settings, "clip_score"), tie_margin=_margin(settings, "clip_score", 0.5))


def _aesthetic(settings: Any) -> Judge:
    from photogenic.evaluation.clip_judges import AestheticJudge, load_aesthetic_head

    if not settings.aesthetic_head:
        raise ConfigError("The aesthetic judge needs the weights of an aesthetic head on CLIP image embeddings: "
                          "set evaluate.judges.aesthetic_head to a .safetensors or .pth file (a LAION aesthetic "
                          "predictor's linear or MLP layers), or remove 'aesthetic' from evaluate.judges.")
    backbone = _clip(settings, "aesthetic")
    return AestheticJudge(backbone, load_aesthetic_head(settings.aesthetic_head),
                          tie_margin=_margin(settings, "aesthetic", 0.05))


register_judge("technical_quality", lambda s: TechnicalQualityJudge(_margin(s, "technical_quality", 0.01)))
register_judge("scene_attributes", lambda s: SceneAttributeJudge(_margin(s, "scene_attributes", 0.02)))
register_judge("subject_kind", lambda s: SubjectKindJudge(_margin(s, "subject_kind", 0.05)))
register_judge("clip_score", _clip_score)
register_judge("aesthetic", _aesthetic)


def build_judges(settings: Any) -> list[Judge]:
    """The judges named in ``settings.visual_appeal`` and ``settings.text_faithfulness``, in order."""
    judges = []
    for criterion in CRITERIA:
        for name in getattr(settings, criterion):
            if name not in JUDGES:
                raise ConfigError(f"Unknown judge {name!r} in evaluate.judges.{criterion}; the judges are: "
                                  f"{', '.join(sorted(JUDGES))}.")
            judge = JUDGES[name](settings)
            if judge.criterion != criterion:
                raise ConfigError(f"The judge {name!r} measures {judge.criterion}, not {criterion}: move it to "
                                  f"evaluate.judges.{judge.criterion}.")
            judges.append(judge)
    return judges


def score_all(judge: Judge, images: list[Image.Image], prompts: list[Prompt], batch_size: int = 16) -> np.ndarray:
    out: list[float] = []
    for start in range(0, len(images), batch_size):
        out.extend(judge.score(images[start:start + batch_size], prompts[start:start + batch_size]))
    return np.asarray(out, dtype=np.float64)
