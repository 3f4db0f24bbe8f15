"""Technical quality without weights: sharpness, noise, exposure, contrast, colour and
composition (photogenic.imaging.quality), the paper's lighting, colour/contrast, subject and
composition criteria as measurable proxies.

A row is rejected when the combined ``technical_quality`` is below ``min_quality``, or when any
single measure's [0, 1] transform is below ``min_component``, so that one glaring defect (a
blurred or black frame) is rejected and named even where the other measures are fine.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from photogenic.config import TechnicalFilterConfig
from photogenic.filtering.registry import register_scorer
from photogenic.filtering.scorer import Columns, Scorer
from photogenic.imaging.quality import measure_all, transformed

#: what a low transform of each measure means, for rejection reasons
_MEANING = {
    "sharpness": "blurred",
    "noise": "noisy",
    "exposure": "badly exposed",
    "contrast": "flat contrast",
    "colourfulness": "washed-out colour",
    "composition": "subject off the composition points",
    "cut_off": "subject cut off at the frame",
}


@register_scorer
class TechnicalScorer(Scorer):
    name = "technical"
    #: 2: wavelet noise, one-sided cut-off, exposure by the ends of the range, colour of lit pixels
    version = "2"
    cost_ms = 6.0
    needs_pixels = True
    #: ``worst`` is the lowest [0, 1] transform of any single measure, the one min_component bounds
    bounded_by = {"min_quality": ("quality", "min"), "min_component": ("worst", "min")}

    config: TechnicalFilterConfig

    def score(self, rows: list[dict[str, Any]], images: list[np.ndarray] | None) -> Columns:
        columns: Columns = {}
        for image in images:
            measures = measure_all(image)
            parts = transformed(measures)
            for name, value in measures.items():
                key = "quality" if name == "technical_quality" else name
                columns.setdefault(self.column(key), []).append(value)
            for name, value in parts.items():
                columns.setdefault(self.column(f"{name}_ok"), []).append(value)
            columns.setdefault(self.column("worst"), []).append(min(parts[name] for name in _MEANING))
        return columns

    def reasons(self, columns: Columns) -> list[str | None]:
        quality = columns[self.column("quality")]
        out: list[str | None] = []
        for i, value in enumerate(quality):
            worst = min(_MEANING, key=lambda name: columns[self.column(f"{name}_ok")][i])
            worst_value = columns[self.column(f"{worst}_ok")][i]
            if worst_value < self.config.min_component:
                out.append(f"{_MEANING[worst]}: {worst} scores {worst_value:.2f} < "
                           f"filter.technical.min_component={self.config.min_component}")
            elif value < self.config.min_quality:
                out.append(f"technical quality {value:.2f} < filter.technical.min_quality={self.config.min_quality}")
            else:
                out.append(None)
        return out

