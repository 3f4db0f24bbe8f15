"""Per-image scorers the auto-filter cascade reads: technical quality, near-duplicates."""

from photogenic.scoring.technical import (
    DEFAULT_WEIGHTS,
    Composition,
    Exposure,
    Logistic,
    TechnicalQualityWeights,
    colourfulness,
    composition,
    contrast,
    exposure,
    exposure_score,
    measure_all,
    noise_level,
    sharpness,
    technical_quality,
    transformed,
)

__all__ = [
    "DEFAULT_WEIGHTS",
    "Composition",
    "Exposure",
    "Logistic",
    "TechnicalQualityWeights",
    "colourfulness",
    "composition",
    "contrast",
    "exposure",
    "exposure_score",
    "measure_all",
    "noise_level",
    "sharpness",
    "technical_quality",
    "transformed",
]
