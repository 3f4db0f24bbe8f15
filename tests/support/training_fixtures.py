"""Tiny datasets, configs and SDXL-layout pipelines for the training tests (random weights,
built from configs; nothing downloaded)."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
from PIL import Image, ImageDraw

from photogenic.dataset.schema import QUARANTINE_SCHEMA
from photogenic.dataset.shards import ShardWriter
from photogenic.dataset.store import Dataset

COLOURS = {"red": (220, 40, 40), "green": (40, 180, 60), "blue": (40, 70, 220), "yellow": (230, 210, 40)}
SHAPES = ["square", "circle"]


def scene(colour: str, shape: str, seed: int, size: int = 48) -> bytes:
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(60, 200, 3)))
    draw = ImageDraw.Draw(image)
    box = (size // 4, size // 4, 3 * size // 4, 3 * size // 4)
    (draw.rectangle if shape == "square" else draw.ellipse)(box, fill=COLOURS[colour])
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def write_dataset(root: Path, name: str, n: int = 24, split: bool = False, caption_column: str = "caption") -> Dataset:
    """A photogenic Dataset of ``n`` captioned scenes under <root>/datasets/<name>."""
    dataset = Dataset(str(root / "datasets" / name), name=name)
    writer = ShardWriter(dataset.shards_dir, first_index=0, max_images=1000, max_bytes=2**30)
    rows = []
    for i in range(n):
        colour, shape = list(COLOURS)[i % 4], SHAPES[(i // 4) % 2]
        data = scene(colour, shape, seed=i)
        sample_id = hashlib.sha256(data).hexdigest()
        stored = writer.add(sample_id, "png", data)
        row = {"sample_id": sample_id, "shard": f"shards/{stored.shard}", "offset": stored.offset,
               "length": stored.length, "width": 48, "height": 48, caption_column: f"a {colour} {shape}"}
        if split:
            row["split"] = "validation" if i % 6 == 0 else "train"
        rows.append(row)
    writer.close_shard()
    dataset.write(pa.Table.from_pylist(rows), QUARANTINE_SCHEMA.empty_table(), {"rows": n})
    return dataset


def tiny_overrides(root: Path, stage: str = "pretrain", steps: int = 4, **extra) -> list[str]:
    """Config overrides for a model of a few thousand parameters trained a few steps."""
    base = [
        f"data.root={root}", "dvc.enabled=false",
        "training.model.resolution=16", "training.model.unet.block_out_channels=[8, 16]",
        "training.model.unet.down_block_types=[DownBlock2D, CrossAttnDownBlock2D]",
        "training.model.unet.up_block_types=[CrossAttnUpBlock2D, UpBlock2D]",
        "training.model.unet.norm_num_groups=4", "training.model.unet.attention_head_dim=4",
        "training.model.text_encoder.max_length=8",
        f"training.{stage}.max_steps={steps}", f"training.{stage}.batch_size=4", f"training.{stage}.workers=0",
        f"training.{stage}.validate_every={steps}", f"training.{stage}.checkpoint_every=2",
        f"training.{stage}.log_every=1", f"training.{stage}.sample_steps=2",
        f"training.{stage}.validation_prompts=[a red square, a blue circle]", f"training.{stage}.warmup_steps=1",
        f"training.{stage}.validation_batches=1",
        # one resolution: the demo's progressive phase is longer than a test's few steps
        f"training.{stage}.low_resolution=null", f"training.{stage}.low_resolution_share=0",
    ]
    return base + [f"{k}={v}" for k, v in extra.items()]


# -- a tiny SDXL-layout pipeline -------------------------------------------------------------------

_WORDS = ["a", "red", "green", "blue", "yellow", "square", "circle"]


def _clip_tokenizer(folder: Path):
    """A CLIP BPE tokenizer over a vocabulary of a few whole words (and their letters)."""
    from transformers import CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    letters = sorted({c for w in _WORDS for c in w})
    vocab = ["<|startoftext|>", "<|endoftext|>", "!"] + letters + [f"{c}</w>" for c in letters]
    merges = []
    for word in _WORDS:  # merge left to right: r e -> re, re d</w> -> red</w>
        pieces = list(word[:-1]) + [word[-1] + "</w>"]
        while len(pieces) > 1:
            merges.append(f"{pieces[0]} {pieces[1]}")
            pieces = [pieces[0] + pieces[1]] + pieces[2:]
            if pieces[0] not in vocab:
                vocab.append(pieces[0])
    merges = list(dict.fromkeys(merges))
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=8), len(vocab)


def tiny_sdxl_pipeline(folder: Path):
    """An SDXL-layout pipeline built from configs: two CLIP text encoders (the second with a
    projection, for the pooled embedding), a UNet with text_time conditioning, a tiny VAE."""
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(0)
    tokenizer, vocab_size = _clip_tokenizer(folder / "tok")
    text_cfg = dict(bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=8, intermediate_size=16,
                    num_attention_heads=2, num_hidden_layers=2, vocab_size=vocab_size, max_position_embeddings=8,
                    projection_dim=8)
    encoder = CLIPTextModel(CLIPTextConfig(**text_cfg))
    encoder_2 = CLIPTextModelWithProjection(CLIPTextConfig(**text_cfg))
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, block_out_channels=(8, 16), layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), norm_num_groups=4, cross_attention_dim=16, addition_embed_type="text_time",
        addition_time_embed_dim=4, projection_class_embeddings_input_dim=8 + 6 * 4, use_linear_projection=True,
        transformer_layers_per_block=(1, 1))
    vae = AutoencoderKL(block_out_channels=(8, 8), in_channels=3, out_channels=3, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                        norm_num_groups=4, sample_size=16)
    scheduler = EulerDiscreteScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                                       steps_offset=1, timestep_spacing="leading")
    pipe = StableDiffusionXLPipeline(vae=vae, text_encoder=encoder, text_encoder_2=encoder_2, tokenizer=tokenizer,
                                     tokenizer_2=tokenizer, unet=unet, scheduler=scheduler)
    pipe.save_pretrained(folder / "pipeline")
    return folder / "pipeline"


# -- the whole recipe, tiny ------------------------------------------------------------------------

def write_prompts(data_root: Path, n: int = 4) -> str:
    """A few of the sample world's held-out prompts under ``data_root``; returns the config value."""
    source = Path(__file__).resolve().parents[2] / "data" / "prompts" / "sample_world.tsv"
    lines = source.read_text(encoding="utf-8").splitlines()[: n + 1]
    target = data_root / "prompts" / "test.tsv"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return "prompts/test.tsv"


def tiny_recipe_overrides(data_root: Path, steps: int = 2) -> list[str]:
    """Both training stages tiny (``tiny_overrides``), and an evaluation of a few prompts, a few
    sampler steps: the training pipeline's four steps in seconds. Leaves data.root and dvc as they are."""
    keep = lambda overrides: [o for o in overrides if not o.startswith(("data.root=", "dvc.enabled="))]  # noqa: E731
    return (keep(tiny_overrides(data_root, "pretrain", steps=steps))
            + keep(tiny_overrides(data_root, "quality_tune", steps=steps))
            + [f"evaluate.prompts={write_prompts(data_root)}", "evaluate.sampling.num_inference_steps=2",
               "evaluate.sampling.batch_size=4", "evaluate.bootstrap=100"])
