"""The technical_quality judge: the auto-filter's weight-free technical quality
(photogenic.imaging.quality) of each generated image, for visual appeal."""

from __future__ import annotations

from PIL import Image

from photogenic.evaluation.judges.registry import VISUAL_APPEAL, register_judge, tie_margin
from photogenic.evaluation.prompts import Prompt
from photogenic.imaging.quality import measure_all


class TechnicalQualityJudge:
    name = "technical_quality"
    criterion = VISUAL_APPEAL

    def __init__(self, tie_margin: float = 0.01):
        self.tie_margin = tie_margin

    def score(self, images: list[Image.Image], prompts: list[Prompt]) -> list[float]:
        return [float(measure_all(image.convert("RGB"))["technical_quality"]) for image in images]


register_judge("technical_quality", lambda s: TechnicalQualityJudge(tie_margin(s, "technical_quality", 0.01)))
