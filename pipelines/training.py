"""The training pipeline: pretrain → quality_tune, each tracked in MLflow through ZenML's
experiment tracker and registered in the MLflow model registry.

Kept to the two training steps on purpose: evaluation and promotion are appended here as their
own steps (evaluate the quality-tuned model against the pretrained one, then promote).
"""

from __future__ import annotations

from zenml import pipeline

from photogenic.config import config_from_dict
from steps.training import pretrain, quality_tune, training_settings


@pipeline(enable_cache=False)
def training(config: dict, progress: bool = True) -> None:
    cfg = config_from_dict(config)
    pretrained = pretrain.with_options(settings=training_settings("pretrain", cfg))(config=config, progress=progress)
    quality_tune.with_options(settings=training_settings("quality_tune", cfg))(
        pretrained, config=config, progress=progress)
