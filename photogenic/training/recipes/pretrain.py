"""Recipe: pretrain a text-to-image model on the (ingested) pool.

Emu pretrained a 2.8B latent-diffusion U-Net on 1.1B image–text pairs; here the same loop trains
a model of the configured size from scratch (``training.model``), or continues a published
pipeline (``training.model.pretrained``: SD 1.x/2.x, SDXL), on every row of the pool, defects
and all. Recipe settings: ``training.pretrain`` (see photogenic/config.py).
"""

from __future__ import annotations

import logging

from photogenic.config import RunConfig
from photogenic.models import build_pipeline, load_pipeline
from photogenic.training.data import read_rows, split_rows
from photogenic.training.recipes.common import RunContext, open_dataset, train_tracked
from photogenic.training.trainer import seed_everything

log = logging.getLogger(__name__)

STAGE = "pretrain"


def run(config: RunConfig, context: RunContext, progress: bool = True) -> dict:
    training = config.training
    recipe = training.pretrain

    # 1. data: the whole pool, a stable share held out for the validation loss
    dataset = open_dataset(config.data.root, recipe.input, "training.pretrain.input")
    train_rows, validation_rows = split_rows(read_rows(dataset, recipe.caption_column), recipe.validation_fraction)
    log.info("pretrain on %s: %d training rows, %d held out", dataset.name, len(train_rows), len(validation_rows))

    # 2. model: a new one built from config (its initial weights from the recipe's seed), or a
    #    published pipeline to continue from
    seed_everything(recipe.seed)
    if training.model.pretrained:
        pipe = load_pipeline(training.model.pretrained, "training.model.pretrained")
    else:
        pipe = build_pipeline(training.model)

    # 3. train (AdamW, warmup + cosine by default, EMA, checkpoints), tracked and registered
    return train_tracked(STAGE, config, recipe, pipe, dataset, train_rows, validation_rows, context, progress)
