"""Recipe: quality-tune the pretrained model on the small curated set (Emu, section 3).

Emu's finding: a few thousand (even a hundred) exceptionally photogenic images, trained on for
a short while with a small constant learning rate, make the pretrained model's images far more
appealing without losing its generality. Their settings, the defaults of the GPU recipe
(configs/gpu-training.yaml): batch 64, noise offset 0.1, at most 15k steps "despite the loss
still decreasing", so the stopping point is chosen on a validation metric: here the validation
loss or the technical quality of samples for fixed prompts, checked every ``validate_every``
steps, keeping the best model. Recipe settings: ``training.quality_tune``.
"""

from __future__ import annotations

import logging

from photogenic.config import RunConfig
from photogenic.errors import ConfigError
from photogenic.models import load_pipeline
from photogenic.training.data import read_rows, split_rows
from photogenic.training.recipes.common import RunContext, open_dataset, resolve_model_path, train_tracked

log = logging.getLogger(__name__)

STAGE = "quality_tune"


def run(config: RunConfig, context: RunContext, progress: bool = True) -> dict:
    training = config.training
    recipe = training.quality_tune
    root = config.data.root

    # 1. data: the packaged training set (rows split == train; split == validation held out);
    #    a dataset without a split column (e.g. the candidate pool) holds out a stable share
    dataset = open_dataset(root, recipe.input, "training.quality_tune.input")
    train_rows, validation_rows = split_rows(read_rows(dataset, recipe.caption_column), recipe.validation_fraction)
    log.info("quality-tune on %s: %d training rows, %d validation", dataset.name, len(train_rows), len(validation_rows))

    # 2. model: the pretrained one (a model name under <data.root>/models, a folder, or a hub id)
    start = recipe.init_from or training.model.pretrained
    if not start:
        raise ConfigError("training.quality_tune.init_from is empty and so is training.model.pretrained: "
                          "quality-tuning needs a pretrained model (e.g. init_from: pretrained).")
    pipe = load_pipeline(resolve_model_path(root, start), "training.quality_tune.init_from")

    # 3. train with a small constant-after-warmup LR and noise offset, keep the best validated model
    return train_tracked(STAGE, config, recipe, pipe, dataset, train_rows, validation_rows, context, progress)
