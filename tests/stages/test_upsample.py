"""The upsample stage: Lanczos by default, a diffusers upscaler (a tiny random one built from
configs here) when a checkpoint is configured; new images in new shards, originals kept."""

from __future__ import annotations

import hashlib
import json

import pytest

from photogenic.config import load_config
from photogenic.dataset.store import Dataset
from photogenic.errors import ConfigError, DataError
from photogenic.stages.registry import get_stage
from photogenic.stages.runner import check_output
from photogenic.stages.upsample import upsample
from photogenic.upsampling.columns import training_image_pointer
from photogenic.upsampling.plan import passes_needed, resampled_size, sample_seed
from tests.conftest import make_captioned


def _rows(ref):
    return {r["sample_id"]: r for r in Dataset(ref.path).read_manifest().to_pylist()}


def test_lanczos_upsamples_the_small_rows_into_new_shards_and_keeps_the_originals(tmp_path):
    config = make_captioned(tmp_path / "data")
    result = upsample(config, progress=False)
    rows = _rows(result.ref)
    assert len(rows) == 8 and result.stats["upsampled"] == 3  # 64x48, 100x150, 90x90
    dataset = Dataset(result.ref.path)
    for sample_id, row in rows.items():
        # the original pointer still reads the original bytes, from the ingested shards
        assert hashlib.sha256(dataset.image_bytes(row)).hexdigest() == sample_id
        assert row["shard"].startswith("../ingested/shards/")
        if min(row["width"], row["height"]) >= 128:
            assert row["upsampled_shard"] is None and row["upsample_backend"] is None
            assert row["training_short_side"] == min(row["width"], row["height"])
            continue
        new = dataset.image_bytes(training_image_pointer(row))
        assert hashlib.sha256(new).hexdigest() == row["upsampled_sha256"]
        assert row["upsampled_shard"].startswith("shards/shard-")
        image = dataset.load_image(training_image_pointer(row))
        assert image.size == (row["upsampled_width"], row["upsampled_height"])
        assert min(image.size) == 128 == row["training_short_side"]
        assert image.size == resampled_size(row["width"], row["height"], 128)
        assert row["upsample_backend"] == "lanczos"
        assert row["upsample_scale"] == pytest.approx(128 / min(row["width"], row["height"]))
        assert row["upsample_seed"] == sample_seed(0, sample_id)
        # a resampled image keeps the original's colours: compare means at the original size
        small = image.resize((row["width"], row["height"]))
        original = dataset.load_image(row)
        assert abs(sum(small.convert("L").getdata()) - sum(original.convert("L").getdata())) \
            / (row["width"] * row["height"]) < 3
    assert check_output("upsample", result.ref, config).success
    card = json.loads((tmp_path / "data/datasets/upsampled/dataset.json").read_text())
    assert card["counts"]["upsampled"] == 3 and card["input"] == "captioned"


def test_an_error_while_writing_ends_the_stage_s_ray_session_at_once(tmp_path, monkeypatch):
    """The images come from a generator over the data plane; an error in the loop that writes
    them closes it, so the stage's Ray ends before the error leaves the stage (not when the
    traceback holding the stage's frame is dropped)."""
    import ray

    import photogenic.stages.upsample as stage

    config = make_captioned(tmp_path / "data")
    config.upsample.workers = 2  # on the data plane
    made = stage.rebuild_writer

    def failing_writer(*args, **kwargs):
        writer = made(*args, **kwargs)

        def add(*_, **__):
            assert ray.is_initialized()  # the images came from the stage's own Ray
            raise OSError("No space left on device")

        writer.add = add
        return writer

    monkeypatch.setattr(stage, "rebuild_writer", failing_writer)
    with pytest.raises(OSError, match="No space left") as raised:
        upsample(config, progress=False)
    assert raised.traceback and not ray.is_initialized()


def test_the_gate_refuses_rows_left_under_the_target(tmp_path):
    config = make_captioned(tmp_path / "data")
    result = upsample(config, progress=False)
    stricter = load_config(None, [f"data.root={tmp_path / 'data'}", "upsample.min_short_side=200"])
    gate = check_output("upsample", result.ref, stricter, raise_on_failure=False)
    assert not gate.success and any("training_short_side" in line for line in gate.failed)


def test_a_rerun_makes_the_same_bytes_on_the_data_plane_or_in_this_process(tmp_path):
    config = make_captioned(tmp_path / "data")
    config.upsample.workers = 2  # Ray tasks
    first = upsample(config, progress=False)
    shard = (tmp_path / "data/datasets/upsampled/shards/shard-000000.tar").read_bytes()
    config.upsample.workers = 0  # in this process, without Ray
    second = upsample(config, progress=False)
    assert first.ref.content_hash == second.ref.content_hash
    assert (tmp_path / "data/datasets/upsampled/shards/shard-000000.tar").read_bytes() == shard
    assert sorted(p.name for p in (tmp_path / "data/datasets/upsampled/shards").iterdir()) == ["shard-000000.tar"]


def test_missing_input_and_missing_checkpoint_are_clear_errors(tmp_path):
    config = load_config(None, [f"data.root={tmp_path}"])
    with pytest.raises(DataError, match="upsample.input"):
        upsample(config, progress=False)
    config = make_captioned(tmp_path / "data")
    for overrides, pattern in (([], "upsample.diffusion.checkpoint is not set"),
                               ([f"upsample.diffusion.checkpoint={tmp_path / 'nowhere'}"],
                                "upsample.diffusion.checkpoint.*no such folder"),
                               (["upsample.diffusion.checkpoint=./models/absent-upscaler"],
                                "upsample.diffusion.checkpoint.*no such folder"),
                               # owner/name is a hub id: offline and not cached, it cannot load
                               (["upsample.diffusion.checkpoint=someone/absent-upscaler"],
                                "upsample.diffusion.checkpoint = 'someone/absent-upscaler' could not be loaded")):
        bad = load_config(None, [f"data.root={tmp_path / 'data'}", "upsample.backend=diffusion", *overrides])
        with pytest.raises(ConfigError, match=pattern):
            upsample(bad, progress=False)
    with pytest.raises(ConfigError, match="upsample.input and upsample.output"):
        upsample(load_config(None, [f"data.root={tmp_path / 'data'}", "upsample.output=captioned"]), progress=False)


def test_a_bad_checkpoint_leaves_the_previous_version_intact(tmp_path):
    config = make_captioned(tmp_path / "data")
    before = upsample(config, progress=False).ref
    bad = load_config(None, [f"data.root={tmp_path / 'data'}", "upsample.backend=diffusion",
                             f"upsample.diffusion.checkpoint={tmp_path / 'nowhere'}"])
    with pytest.raises(ConfigError):
        upsample(bad, progress=False)
    assert Dataset(before.path).ref().content_hash == before.content_hash


def test_a_diffusion_checkpoint_asks_for_a_gpu():
    spec = get_stage("upsample")
    assert spec.resources_for(load_config()).gpus == 0
    gpu = load_config(None, ["upsample.backend=diffusion", "upsample.diffusion.checkpoint=some/upscaler"])
    assert spec.resources_for(gpu).gpus == 1
    assert spec.inputs == ("upsample.input",) and spec.outputs == ("upsample.output",)


def test_passes_above_the_native_scale():
    assert passes_needed(48, 128, 4) == 1 and passes_needed(24, 128, 4) == 2 and passes_needed(32, 128, 4) == 1
    assert passes_needed(128, 128, 4) == 0 and passes_needed(24, 64, 2) == 2


def tiny_upscale_pipeline(folder, vae_blocks: int = 2):
    """A StableDiffusionUpscalePipeline with random weights, built from configs as diffusers'
    own tests build theirs, and a CLIP tokenizer from a vocabulary written here (no download).
    ``vae_blocks`` = 2 gives a native x2 upscaler (the VAE's scale factor), so two passes stay
    cheap."""
    import torch
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        DDPMScheduler,
        StableDiffusionUpscalePipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for char in "abcdefghijklmnopqrstuvwxyz":
        vocab[char] = len(vocab)
        vocab[f"{char}</w>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(vocab_file=str(folder / "vocab.json"), merges_file=str(folder / "merges.txt"),
                              model_max_length=77)
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(16, 32), layers_per_block=1, sample_size=16, in_channels=7, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=16, attention_head_dim=4, num_class_embeds=400, norm_num_groups=8)
    vae = AutoencoderKL(block_out_channels=[16, 16, 32][:vae_blocks], in_channels=3, out_channels=3,
                        down_block_types=["DownEncoderBlock2D"] * vae_blocks,
                        up_block_types=["UpDecoderBlock2D"] * vae_blocks, latent_channels=4, norm_num_groups=8,
                        scaling_factor=0.08333)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=16, intermediate_size=32, num_attention_heads=2,
        num_hidden_layers=1, vocab_size=len(vocab), max_position_embeddings=77, projection_dim=16))
    pipe = StableDiffusionUpscalePipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, low_res_scheduler=DDPMScheduler(),
        scheduler=DDIMScheduler(prediction_type="v_prediction"), max_noise_level=350)
    pipe.save_pretrained(folder / "pipeline")
    return folder / "pipeline"


def test_diffusion_backend_with_a_tiny_random_upscaler(tmp_path):
    checkpoint = tiny_upscale_pipeline(tmp_path / "tiny")
    rows = [(32, 24, "a red cat", "human"), (24, 32, "a blue car", "model"), (32, 24, "a green bird", "human"),
            (80, 72, "a big house", "human")]
    config = make_captioned(tmp_path / "data", rows=rows)
    config = load_config(None, [f"data.root={tmp_path / 'data'}", "upsample.backend=diffusion",
                                f"upsample.diffusion.checkpoint={checkpoint}", "upsample.min_short_side=64",
                                "upsample.diffusion.num_inference_steps=2", "upsample.diffusion.guidance_scale=1.5",
                                "upsample.diffusion.batch_size=2"])
    result = upsample(config, progress=False)
    table = _rows(result.ref)
    dataset = Dataset(result.ref.path)
    upsampled = [r for r in table.values() if r["upsample_backend"]]
    assert len(upsampled) == 3 and result.stats["new_images"] == 3
    for row in upsampled:
        # native x2, two passes: 24 → 48 → 96 >= 64
        assert row["upsample_backend"] == "diffusion-x4" and row["upsample_scale"] == 4.0
        assert (row["upsampled_width"], row["upsampled_height"]) == (row["width"] * 4, row["height"] * 4)
        assert dataset.load_image(training_image_pointer(row)).size == (row["width"] * 4, row["height"] * 4)
        assert row["upsample_seed"] == sample_seed(0, row["sample_id"])
    assert table[next(s for s, r in table.items() if r["width"] == 80)]["upsample_backend"] is None
    assert check_output("upsample", result.ref, config).success
    # the model in this process instead of a Ray actor: the same batches, the same bytes
    shards = {p.name: p.read_bytes() for p in (tmp_path / "data/datasets/upsampled/shards").iterdir()}
    config.upsample.workers = 0
    again = upsample(config, progress=False)
    assert again.ref.content_hash == result.ref.content_hash
    assert {p.name: p.read_bytes() for p in (tmp_path / "data/datasets/upsampled/shards").iterdir()} == shards
