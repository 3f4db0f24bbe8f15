"""The U-Net's speed settings for training: attention kernel, memory format, torch.compile.

Each is a switch of the training recipe (``attention``, ``channels_last``, ``compile`` in
``TrainStageConfig``), its default the faster one as measured; ``benchmarks/vs_reference.py
--set training.quality_tune.KEY=VALUE`` measures any of them against the reference loop, and
``benchmarks/train_speed.py --gpu --set training.pretrain.KEY=VALUE`` on a GPU.
"""

from __future__ import annotations

import logging

import torch

log = logging.getLogger(__name__)


def prepare_unet(unet, cfg) -> None:
    """Attention kernel and memory format, set on the module itself (sampling uses them too)."""
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    if cfg.attention == "classic":
        unet.set_default_attn_processor()
    else:  # sdpa: torch's fused kernel wherever the module holds the classic processor
        processors = unet.attn_processors
        unet.set_attn_processor({name: AttnProcessor2_0() if type(p) is AttnProcessor else p
                                 for name, p in processors.items()})
    if cfg.channels_last:
        unet.to(memory_format=torch.channels_last)


def compiled(unet, cfg):
    """What the training steps call: ``unet`` compiled with the configured mode, or ``unet``."""
    if cfg.compile == "off":
        return unet
    log.info("compiling the U-Net (torch.compile, mode %s): the first steps wait for it", cfg.compile)
    return torch.compile(unet, mode=None if cfg.compile == "default" else cfg.compile)
