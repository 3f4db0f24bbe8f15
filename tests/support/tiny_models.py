"""Tiny random-weight models built from configs, saved to a temp folder: what the evaluation
tests sample and judge (no downloads, as diffusers' and transformers' own tests do)."""

from __future__ import annotations

import json
import string
from pathlib import Path

#: the tokenizer's vocabulary: single characters, alone and word-final, plus the specials
_CHARS = string.ascii_lowercase + string.digits + ",.-'"


def tiny_tokenizer(folder: Path, max_length: int = 32):
    from transformers import CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in _CHARS:
        vocab.setdefault(c, len(vocab))
        vocab.setdefault(c + "</w>", len(vocab))
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")  # no merges: words split into characters
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=max_length)


def tiny_text_config(vocab_size: int, hidden_size: int = 16, max_length: int = 32):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=hidden_size,
                          intermediate_size=2 * hidden_size, num_attention_heads=2, num_hidden_layers=2,
                          vocab_size=vocab_size, max_position_embeddings=max_length, projection_dim=16)


def tiny_sd_pipeline(folder: Path, seed: int, unet_channels: tuple[int, ...] = (8, 16), layers_per_block: int = 1,
                     vae_channels: tuple[int, ...] = (8, 16), image_size: int = 32, text_width: int = 16,
                     max_length: int = 32, groups: int = 4, head_dim: int = 2) -> Path:
    """A StableDiffusionPipeline with a random UNet, VAE and CLIP text encoder (SD's layout: one
    cross-attention level of two); tiny by default (32x32 images), any size by the arguments."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    tokenizer = tiny_tokenizer(folder.parent / f"{folder.name}-tokenizer", max_length)
    torch.manual_seed(seed)
    factor = 2 ** (len(vae_channels) - 1)
    unet = UNet2DConditionModel(
        block_out_channels=unet_channels, layers_per_block=layers_per_block, sample_size=image_size // factor,
        in_channels=4, out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=text_width, norm_num_groups=groups,
        attention_head_dim=head_dim)
    vae = AutoencoderKL(block_out_channels=vae_channels, in_channels=3, out_channels=3,
                        down_block_types=("DownEncoderBlock2D",) * len(vae_channels),
                        up_block_types=("UpDecoderBlock2D",) * len(vae_channels),
                        latent_channels=4, norm_num_groups=groups, sample_size=image_size)
    text_encoder = CLIPTextModel(tiny_text_config(len(tokenizer), text_width, max_length))
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionPipeline(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.save_pretrained(str(folder))
    return folder


def tiny_clip(folder: Path, seed: int = 0) -> Path:
    """A random CLIPModel with its processor (tiny tokenizer, 32 px image processor)."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPVisionConfig

    tokenizer = tiny_tokenizer(folder.parent / f"{folder.name}-tokenizer")
    torch.manual_seed(seed)
    vision = CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_attention_heads=2, num_hidden_layers=2,
                              image_size=32, patch_size=8, projection_dim=16)
    config = CLIPConfig(text_config=tiny_text_config(len(tokenizer)).to_dict(), vision_config=vision.to_dict(),
                        projection_dim=16)
    CLIPModel(config).save_pretrained(str(folder))
    processor = CLIPProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32},
                                                                 crop_size={"height": 32, "width": 32}),
                              tokenizer=tokenizer)
    processor.save_pretrained(str(folder))
    return folder
