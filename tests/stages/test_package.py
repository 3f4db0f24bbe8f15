"""The package stage: aspect-ratio buckets, crops, captions, a stable validation split, WebDataset
shards, a dataset card, and the training set's quality gate."""

from __future__ import annotations

import io
import json
import math
import tarfile

import numpy as np
import pytest
from PIL import Image

from photogenic.config import load_config
from photogenic.dataset.store import Dataset
from photogenic.errors import ConfigError, DataError
from photogenic.packaging.buckets import cover_scale, make_buckets, nearest_bucket
from photogenic.packaging.split import VALIDATION, split_of
from photogenic.stages.package import package
from photogenic.stages.runner import check_output
from photogenic.stages.upsample import upsample
from tests.conftest import make_captioned


def test_buckets_hold_about_the_same_pixels_and_never_enlarge_a_large_enough_image():
    buckets = make_buckets(128, 16, 3.0)
    assert (128, 128) in [(b.width, b.height) for b in buckets]
    for b in buckets:
        assert b.width % 16 == 0 and b.height % 16 == 0
        assert 0.7 * 128 * 128 <= b.width * b.height <= 128 * 128
        assert 1 / 3 <= b.aspect <= 3
        assert any(o.width == b.height and o.height == b.width for o in buckets)  # its transpose too
    rng = np.random.default_rng(0)
    for _ in range(2000):  # any image with short side >= 128 covers its nearest bucket
        short, aspect = int(rng.integers(128, 700)), float(np.exp(rng.uniform(-1.3, 1.3)))
        w, h = (round(short * aspect), short) if aspect >= 1 else (short, round(short / aspect))
        assert cover_scale(w, h, nearest_bucket(w, h, buckets)) <= 1.0
    assert nearest_bucket(400, 200, buckets).aspect > 1.5 and nearest_bucket(200, 400, buckets).aspect < 1 / 1.5
    assert nearest_bucket(300, 300, buckets).name == "128x128"


def test_the_validation_split_depends_on_the_sample_alone():
    ids = [f"{i:064x}" for i in range(4000)]
    splits = {i: split_of(i, 0.1, "salt") for i in ids}
    share = sum(s == VALIDATION for s in splits.values()) / len(ids)
    assert 0.08 < share < 0.12
    # recomputing for a larger pool never moves a sample; another salt draws another set
    more = [f"{i:064x}" for i in range(8000)]
    assert all(split_of(i, 0.1, "salt") == splits[i] for i in more[:4000])
    assert [split_of(i, 0.1, "pepper") for i in ids] != list(splits.values())


def _packaged(tmp_path, *overrides):
    config = make_captioned(tmp_path / "data")
    config = load_config(None, [f"data.root={tmp_path / 'data'}", "upsample.workers=0", "package.workers=0",
                                "package.validation_share=0.4", *overrides])
    upsample(config, progress=False)
    return config, package(config, progress=False)


def test_package_writes_bucketed_webdataset_shards_captions_and_a_card(tmp_path):
    config, result = _packaged(tmp_path)
    dataset = Dataset(result.ref.path)
    rows = dataset.read_manifest().to_pylist()
    assert len(rows) == 7 and result.ref.quarantined == 1  # the blank caption is quarantined, with its reason
    assert dataset.read_quarantine().to_pylist()[0]["reason_code"] == "no_training_caption"
    buckets = {b.name: b for b in make_buckets(128, 16, 3.0)}
    captions = {r[2] for r in __import__("tests.conftest", fromlist=["CAPTIONED_ROWS"]).CAPTIONED_ROWS}
    for row in rows:
        image = Image.open(io.BytesIO(dataset.image_bytes(row)))
        assert image.format == "PNG" and image.size == (row["width"], row["height"])
        assert buckets[row["bucket"]].width == row["width"] and buckets[row["bucket"]].height == row["height"]
        assert row["caption"] in captions and row["split"] in ("train", "validation")
        assert row["source_short_side"] >= 128 and row["resize_scale"] <= 1.0
        aspect = row["original_width"] / row["original_height"]
        assert abs(math.log(row["width"] / row["height"]) - math.log(aspect)) < 0.3
        assert 0 <= row["crop_left"] and 0 <= row["crop_top"]
    assert {r["upsample_backend"] for r in rows} == {None, "lanczos"}
    # a standard tar that WebDataset reads: each sample's image, caption and metadata adjacent
    with tarfile.open(tmp_path / "data/datasets/training_set/shards/shard-000000.tar") as tar:
        names = tar.getnames()
        first = rows[0]["sample_id"]
        assert names[:3] == [f"{first}.png", f"{first}.txt", f"{first}.json"]
        assert tar.extractfile(f"{first}.txt").read().decode() == rows[0]["caption"]
        meta = json.loads(tar.extractfile(f"{first}.json").read())
        assert meta["bucket"] == rows[0]["bucket"] and meta["split"] == rows[0]["split"]
    card = (tmp_path / "data/datasets/training_set/README.md").read_text()
    assert "| total | 7 |" in card and "Upsampled share: 28.6% (2 of 7)" in card
    assert "| human | 4 | 57.1% |" in card and "| captioned |" in card and "| upsampled | upsample |" in card
    assert check_output("package", result.ref, config).success


def test_the_gate_refuses_an_empty_validation_split_and_images_under_the_resolution(tmp_path):
    config, result = _packaged(tmp_path, "package.validation_share=0.0")
    gate = check_output("package", result.ref, config, raise_on_failure=False)
    assert not gate.success and any("split" in line for line in gate.failed)
    # a training set whose images are under the training resolution: refused by the gate...
    config, result = _packaged(tmp_path, "package.validation_share=0.4")
    higher = load_config(None, [f"data.root={tmp_path / 'data'}", "package.resolution=192"])
    gate = check_output("package", result.ref, higher, raise_on_failure=False)
    assert not gate.success and any("source_short_side" in line for line in gate.failed)
    # ... and never made: packaging above the resolution rows were upsampled to is a config error
    with pytest.raises(ConfigError, match="upsample.min_short_side"):
        package(higher, progress=False)


def test_a_random_crop_is_seeded_per_sample_and_inside_the_image():
    from photogenic.packaging.images import pack

    image = Image.new("RGB", (600, 128), (10, 20, 30))  # wider than the widest bucket
    bucket = nearest_bucket(600, 128, make_buckets(128, 16, 3.0))
    first = pack(image, bucket, "random", "a" * 64, "png", 95)
    assert first == pack(image, bucket, "random", "a" * 64, "png", 95)
    offsets = {pack(image, bucket, "random", f"{i:064x}", "png", 95).crop_left for i in range(20)}
    assert len(offsets) > 1
    resized = first.resized
    assert all(0 <= left <= resized[0] - bucket.width for left in offsets)
    assert Image.open(io.BytesIO(first.data)).size == (bucket.width, bucket.height)


def test_packaging_twice_gives_the_same_bytes_in_this_process_or_on_the_data_plane(tmp_path):
    _, first = _packaged(tmp_path / "a")
    _, second = _packaged(tmp_path / "b", "package.workers=2")
    a, b = tmp_path / "a/data/datasets/training_set", tmp_path / "b/data/datasets/training_set"
    for name in ("manifest.parquet", "shards/shard-000000.tar", "README.md"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_package_needs_the_caption_stage_columns(tmp_path):
    config = make_captioned(tmp_path / "data")
    config = load_config(None, [f"data.root={tmp_path / 'data'}", "package.input=ingested"])
    with pytest.raises(DataError, match="training_caption"):
        package(config, progress=False)
