"""The trainer's caches and speed switches: latents and caption embeddings cached beside the
dataset train the same model as encoding every step; a changed autoencoder, resolution, image,
text encoder or caption is never read from another's cache; a damaged shard is computed again;
channels-last and the classic attention kernel change nothing but speed."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from photogenic.config import load_config
from tests.support.training_fixtures import scene, tiny_overrides, write_dataset

LATENT = {"training.model.space": "latent", "training.model.autoencoder.latent_channels": 4,
          "training.model.autoencoder.block_out_channels": "[8, 8]", "training.model.autoencoder.norm_num_groups": 4}


def _final_unet(root: Path) -> dict[str, torch.Tensor]:
    from photogenic.training.checkpoint import load_latest

    return load_latest(str(root / "models" / "pretrained.work" / "checkpoints")).state["unet"]


def _summary(root: Path) -> dict:
    return json.loads((root / "models" / "pretrained.json").read_text())


def _train(root: Path, steps: int = 6, **settings) -> dict:
    from photogenic.stages.runner import run_stage

    if not (root / "datasets" / "ingested").exists():
        write_dataset(root, "ingested", n=8)
    cfg = load_config(None, tiny_overrides(root, steps=steps, **{**LATENT, "training.pretrain.checkpoint_every": steps,
                                                                 **settings}))
    run_stage("pretrain", cfg, progress=False)
    return _summary(root)


def test_cached_latents_train_the_same_model_as_encoding_every_step(tmp_path):
    """8 images, batch 4, 6 steps: the cached run encodes each image once (the first epoch) and
    reads it back for the other two epochs; a second run reads them all; every run ends with
    the weights of the run that encoded every batch, up to float noise."""
    every_step = _train(tmp_path / "every-step", **{"training.pretrain.latent_cache": False})
    assert every_step["latents_from_cache"] == 0 and every_step["latents_encoded"] >= 6 * 4
    cold = _train(tmp_path / "cached", **{"training.pretrain.latent_cache": True})
    assert cold["latents_encoded"] <= 8 + 4 and cold["latents_from_cache"] >= 4 * 4  # (+ held-out rows)
    shards = list((tmp_path / "cached" / "datasets" / "ingested.cache" / "latents").glob("*-16px/part-*.safetensors"))
    assert shards, "the cache is written beside the dataset"
    reference = _final_unet(tmp_path / "every-step")
    first = _final_unet(tmp_path / "cached")

    warm = _train(tmp_path / "cached", **{"training.pretrain.latent_cache": True})
    assert warm["latents_encoded"] == 0 and warm["latents_from_cache"] >= 6 * 4
    second = _final_unet(tmp_path / "cached")
    for name, tensor in reference.items():
        assert torch.allclose(first[name], tensor, atol=1e-5, rtol=1e-4), name
        assert torch.allclose(second[name], tensor, atol=1e-5, rtol=1e-4), name
    assert any(not torch.equal(tensor, t) for tensor, t in zip(reference.values(), _initial_unet(tmp_path).values()))


def _initial_unet(tmp_path: Path) -> dict[str, torch.Tensor]:
    """The U-Net the runs above started from (a new model from the recipe's seed)."""
    from photogenic.models import build_pipeline
    from photogenic.training.trainer import seed_everything

    cfg = load_config(None, tiny_overrides(tmp_path, **LATENT))
    seed_everything(cfg.training.pretrain.seed)
    return build_pipeline(cfg.training.model).unet.state_dict()


def _latents(pipe, dataset, resolution: int, flips: bool = False):
    from photogenic.training.latents import Latents

    return Latents(pipe, torch.device("cpu"), dataset.path, resolution, cache=True, flips=flips)


def _batch(dataset, resolution: int, skip=frozenset()):
    from photogenic.training.data import CaptionedImages, collate, read_rows

    images = CaptionedImages(dataset.path, read_rows(dataset, "caption"), resolution, keyed=True, skip=skip)
    return collate([images[i] for i in range(len(images))])


def test_latent_cache_is_invalidated_by_the_autoencoder_the_resolution_and_the_images(tmp_path):
    from photogenic.models import build_pipeline

    cfg = load_config(None, tiny_overrides(tmp_path, **LATENT))
    pipe = build_pipeline(cfg.training.model)
    dataset = write_dataset(tmp_path, "training_set", n=4)
    generator = lambda: torch.Generator().manual_seed(0)  # noqa: E731

    first = _latents(pipe, dataset, 16)
    drawn = first(_batch(dataset, 16), generator())
    assert (first.encoded, first.hits) == (4, 0)
    first.flush()

    # the same autoencoder, resolution and images: read back, the same draw, and the loader
    # no longer decodes them
    again = _latents(pipe, dataset, 16)
    assert len(again.cached_keys()) == 4
    batch = _batch(dataset, 16, skip=again.cached_keys())
    assert batch["pixels"] is None and not batch["has_pixels"].any()
    assert torch.allclose(again(batch, generator()), drawn, atol=1e-6)
    assert (again.encoded, again.hits) == (0, 4)

    # another resolution: another folder
    smaller = _latents(pipe, dataset, 8)
    smaller(_batch(dataset, 8), generator())
    assert (smaller.encoded, smaller.hits) == (0 + 4, 0)

    # one image changed (new bytes, so a new sha256): only that one is encoded
    _replace_image(dataset, dataset.read_manifest().to_pylist(), 2, scene("red", "circle", seed=99))
    partly = _latents(pipe, dataset, 16)
    partly(_batch(dataset, 16, skip=partly.cached_keys()), generator())
    assert (partly.encoded, partly.hits) == (1, 3)

    # one weight of the autoencoder changed: a different fingerprint, nothing read
    with torch.no_grad():
        pipe.vae.encoder.conv_in.weight[0, 0, 0, 0] += 1e-3
    retrained = _latents(pipe, dataset, 16)
    assert retrained.store.folder != first.store.folder and len(retrained.cached_keys()) == 0
    retrained(_batch(dataset, 16), generator())
    assert (retrained.encoded, retrained.hits) == (4, 0)


def _replace_image(dataset, rows: list[dict], index: int, data: bytes) -> None:
    """Rewrite the dataset with row ``index``'s image replaced (as a rerun of packaging would)."""
    import pyarrow as pa

    from photogenic.dataset.schema import QUARANTINE_SCHEMA
    from photogenic.dataset.shards import ShardWriter

    writer = ShardWriter(dataset.shards_dir, first_index=1, max_images=1000, max_bytes=2**30)
    stored = writer.add(rows[index]["sample_id"], "png", data)
    writer.close_shard()
    rows[index].update(shard=f"shards/{stored.shard}", offset=stored.offset, length=stored.length)
    dataset.write(pa.Table.from_pylist(rows), QUARANTINE_SCHEMA.empty_table(), {"rows": len(rows)})


def test_flips_are_cached_as_a_second_variant_the_mirrored_images_latent(tmp_path):
    from photogenic.models import build_pipeline, latent_distribution

    cfg = load_config(None, tiny_overrides(tmp_path, **LATENT))
    pipe = build_pipeline(cfg.training.model)
    dataset = write_dataset(tmp_path, "training_set", n=4)
    latents = _latents(pipe, dataset, 16, flips=True)
    batch = _batch(dataset, 16)
    flip = torch.tensor([True, False, True, False])
    latents(batch, torch.Generator().manual_seed(0), flip)
    keys = batch["key"]
    assert len(latents.cached_keys()) == 0  # each image needs both variants before the loader may skip it
    mean, std = latent_distribution(pipe, batch["pixels"][0:1].flip(-1))
    assert torch.allclose(latents.store.get(keys[0] + ".flip"), torch.cat([mean, std]), atol=1e-6)
    latents(batch, torch.Generator().manual_seed(0), ~flip)
    assert latents.cached_keys() == frozenset(keys) and latents.encoded == 8


def test_random_flip_trains_in_pixel_and_latent_space(tmp_path):
    from photogenic.stages.runner import run_stage

    for space, settings in (("pixel", {}), ("latent", LATENT)):
        root = tmp_path / space
        write_dataset(root, "ingested", n=8)
        cfg = load_config(None, tiny_overrides(root, steps=2, **{**settings, "training.pretrain.random_flip": True,
                                                                  "training.pretrain.latent_cache": True}))
        out = run_stage("pretrain", cfg, progress=False)
        assert out.stats["steps"] == 2


def test_caption_embeddings_are_cached_on_disk_per_caption_and_per_text_encoder(tmp_path, monkeypatch):
    from photogenic.models import build_pipeline
    from photogenic.training.caches import text_store
    from photogenic.training.conditioning import Conditioner, text_fingerprint

    cfg = load_config(None, tiny_overrides(tmp_path))
    pipe = build_pipeline(cfg.training.model)
    encoded: list[str] = []
    encode_prompt = type(pipe).encode_prompt
    monkeypatch.setattr(type(pipe), "encode_prompt",
                        lambda self, prompt, *a, **k: encoded.extend(prompt) or encode_prompt(self, prompt, *a, **k))
    dataset_path = str(tmp_path / "datasets" / "training_set")

    def conditioner():
        return Conditioner(pipe, 16, torch.device("cpu"), store=text_store(dataset_path, text_fingerprint(pipe)))

    first = conditioner()
    captions = ["a red square", "", "a blue circle", "a red square"]
    embeds = first(captions)["encoder_hidden_states"]
    assert sorted(encoded) == ["", "a blue circle", "a red square"]  # the empty prompt dropout trains on, too
    first.flush()

    encoded.clear()
    again = conditioner()(captions)["encoder_hidden_states"]
    assert encoded == [] and torch.equal(again, embeds)
    conditioner()(["a green square"])
    assert encoded == ["a green square"]  # a new caption is a new entry

    encoded.clear()
    with torch.no_grad():
        next(pipe.text_encoder.parameters()).view(-1)[0] += 1e-3
    conditioner()(captions)
    assert sorted(encoded) == ["", "a blue circle", "a red square"]  # another text encoder, another folder


def test_an_unreadable_cache_shard_is_computed_again(tmp_path, caplog):
    from photogenic.training.tensor_store import TensorStore

    store = TensorStore(str(tmp_path / "store"))
    store.add("a", torch.ones(3))
    good = store.flush()
    store.add("b", torch.zeros(2))
    bad = Path(store.flush())
    bad.write_bytes(bad.read_bytes()[:-5])  # cut short
    with caplog.at_level(logging.WARNING, logger="photogenic.training.tensor_store"):
        reopened = TensorStore(str(tmp_path / "store"))
    assert "a" in reopened and "b" not in reopened and reopened.shards_read == 1
    assert Path(good).name in {p.name for p in (tmp_path / "store").iterdir()}
    assert "unreadable" in caplog.text


def test_channels_last_and_the_classic_attention_kernel_change_nothing_but_speed(tmp_path):
    base = _train(tmp_path / "default", steps=2)
    assert base["steps"] == 2
    _train(tmp_path / "switched", steps=2, **{"training.pretrain.channels_last": True,
                                              "training.pretrain.attention": "classic"})
    a, b = _final_unet(tmp_path / "default"), _final_unet(tmp_path / "switched")
    for name, tensor in a.items():
        assert torch.allclose(tensor, b[name], atol=1e-5, rtol=1e-4), name

    from photogenic.models import load_pipeline

    saved = load_pipeline(str(tmp_path / "switched" / "models" / "pretrained"))
    assert saved.unet.conv_in.weight.is_contiguous()  # the saved model is an ordinary one


@pytest.mark.slow  # compiling the U-Net's forward and backward takes a minute on 2 cores
def test_compiled_unet_trains_the_same_model(tmp_path):
    _train(tmp_path / "eager", steps=2)
    _train(tmp_path / "compiled", steps=2, **{"training.pretrain.compile": "default"})
    a, b = _final_unet(tmp_path / "eager"), _final_unet(tmp_path / "compiled")
    assert set(a) == set(b)  # the checkpoint holds the module's own names, not the compiled wrapper's
    for name, tensor in a.items():
        assert torch.allclose(tensor, b[name], atol=1e-4, rtol=1e-3), name
