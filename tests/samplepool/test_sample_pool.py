"""The embedded synthetic pool: img2dataset layout, byte-reproducibility, defects that are both
allocated as configured and visible in the pixels/bytes, ground truth, and the reuse stamp."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from photogenic.samplepool import (
    CAPTION_DEFECTS,
    DEFECTS,
    IMAGE_DEFECTS,
    SamplePoolSpec,
    generate_sample_pool,
)
from photogenic.samplepool.defects import encode_jpeg
from photogenic.samplepool.sample import PoolContext, render_clean

N, SEED, SHARD_SIZE = 300, 0, 100
JSON_FIELDS = ["url", "caption", "likes", "views", "category", "key", "status", "error_message", "width", "height",
               "original_width", "original_height", "exif", "sha256"]


@pytest.fixture(scope="module")
def pool(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pool") / "sample-pool"
    generate_sample_pool(out, n=N, seed=SEED, shard_size=SHARD_SIZE, workers=1, progress=False)
    return out


@pytest.fixture(scope="module")
def truth(pool) -> dict[str, dict]:
    rows = pq.read_table(pool / "ground_truth.parquet").to_pylist()
    return {row["key"]: row for row in rows}


@pytest.fixture(scope="module")
def members(pool) -> dict[str, dict[str, bytes]]:
    samples: dict[str, dict[str, bytes]] = {}
    for tar_path in sorted(pool.glob("*.tar")):
        with tarfile.open(tar_path) as tar:
            for member in tar:
                key, ext = member.name.split(".", 1)
                samples.setdefault(key, {})[ext] = tar.extractfile(member).read()
    return samples


@pytest.fixture(scope="module")
def context() -> PoolContext:
    return PoolContext.create(N, SEED, SHARD_SIZE, SamplePoolSpec())


@pytest.fixture
def out(tmp_path) -> Path:
    """A pool folder of its own (the shared conftest puts other things in tmp_path)."""
    return tmp_path / "pool"


def _decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image.convert("RGB")


def _with(truth: dict[str, dict], defect: str, without: tuple[str, ...] = ()) -> list[dict]:
    rows = [r for r in truth.values() if defect in r["defects"] and not set(without) & set(r["defects"])]
    assert rows, f"no sample carries {defect} without {without}"
    return rows


def _pair(members, context, row) -> tuple[np.ndarray, np.ndarray]:
    """The sample's decoded pixels and its clean render (same scene and size, no defect)."""
    image = _decoded(members[row["key"]]["jpg"])
    clean = render_clean(context, row["sample_index"]).image
    return np.asarray(image, dtype=np.float64), np.asarray(clean, dtype=np.float64)


def _laplacian_variance(pixels: np.ndarray) -> float:
    grey = pixels.mean(axis=2)
    lap = 4 * grey[1:-1, 1:-1] - grey[:-2, 1:-1] - grey[2:, 1:-1] - grey[1:-1, :-2] - grey[1:-1, 2:]
    return float(lap.var())


# -- layout -------------------------------------------------------------------------------------


def test_layout_matches_img2dataset(pool, members, truth):
    names = sorted(p.name for p in pool.iterdir())
    shards = [f"{s:05d}" for s in range(N // SHARD_SIZE)]
    expected = sorted([f"{s}{ext}" for s in shards for ext in (".tar", ".parquet", "_stats.json")]
                      + ["README.md", "_generator.json", "ground_truth.parquet"])
    assert names == expected

    for shard_number, shard in enumerate(shards):
        with tarfile.open(pool / f"{shard}.tar") as tar:
            infos = tar.getmembers()
        keys = [f"{shard_number:05d}{i:04d}" for i in range(SHARD_SIZE)]
        assert [i.name for i in infos] == [f"{k}.{ext}" for k in keys for ext in ("jpg", "txt", "json")]
        for info in infos:
            assert (info.mtime, info.uid, info.gid, info.uname, info.gname, info.mode) == (0, 0, 0, "", "", 0o644)

        rows = pq.read_table(pool / f"{shard}.parquet").to_pylist()
        assert [r["key"] for r in rows] == keys
        stats = json.loads((pool / f"{shard}_stats.json").read_text())
        assert stats["count"] == stats["successes"] == SHARD_SIZE
        assert stats["failed_to_download"] == stats["failed_to_resize"] == 0
        assert stats["status_dict"] == {"success": SHARD_SIZE}
        assert {"duration", "start_time", "end_time"} <= set(stats)

        for row in rows:
            sample = members[row["key"]]
            meta = json.loads(sample["json"])
            assert list(meta) == JSON_FIELDS
            assert meta == row  # the Parquet row and the JSON member agree
            assert meta["status"] == "success" and meta["error_message"] is None and meta["exif"] is None
            assert meta["sha256"] == hashlib.sha256(sample["jpg"]).hexdigest()
            assert (meta["width"], meta["height"]) == (truth[row["key"]]["width"], truth[row["key"]]["height"])
            assert meta["url"].startswith("https://") and ".example/" in meta["url"]
            assert meta["likes"] <= meta["views"]
            if not {"corrupt", "truncated"} & set(truth[row["key"]]["defects"]):
                assert _decoded(sample["jpg"]).size == (meta["width"], meta["height"])


def test_keys_grow_a_digit_for_shards_over_ten_thousand():
    context = PoolContext.create(1, 0, 20_000, SamplePoolSpec())
    assert context.key(0) == "0000000000"
    assert PoolContext.create(1, 0, 1000, SamplePoolSpec()).key(0) == "000000000"


# -- determinism --------------------------------------------------------------------------------


def _contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_same_seed_gives_identical_bytes_whatever_the_workers(tmp_path):
    runs = [(tmp_path / "a", 1), (tmp_path / "b", 1), (tmp_path / "c", 2)]
    for folder, workers in runs:
        generate_sample_pool(folder, n=120, seed=7, shard_size=50, workers=workers, progress=False)
    first = _contents(runs[0][0])
    assert len(first) == 3 * 3 + 3
    for folder, _ in runs[1:]:
        assert _contents(folder) == first


def test_another_seed_gives_another_pool(tmp_path):
    generate_sample_pool(tmp_path / "a", n=30, seed=1, progress=False, workers=1)
    generate_sample_pool(tmp_path / "b", n=30, seed=2, progress=False, workers=1)
    assert (tmp_path / "a" / "00000.tar").read_bytes() != (tmp_path / "b" / "00000.tar").read_bytes()


# -- defects: shares ----------------------------------------------------------------------------


def test_every_defect_appears_with_its_configured_share(pool, truth):
    spec = SamplePoolSpec()
    stamp = json.loads((pool / "_generator.json").read_text())
    for defect in DEFECTS:
        count = sum(defect in row["defects"] for row in truth.values())
        assert count >= 1, defect
        assert abs(count / N - spec.share(defect)) <= 0.5 / N + 1e-9, defect
        assert stamp["defects"][defect] == count
    defective = sum(bool(row["defects"]) for row in truth.values()) / N
    assert 0.55 <= defective <= 0.7


def test_custom_shares_are_honoured(out):
    spec = SamplePoolSpec(blur=0.5, noise=0.0, watermark=0.25)
    generate_sample_pool(out, n=40, seed=3, spec=spec, workers=1, progress=False)
    rows = pq.read_table(out / "ground_truth.parquet").to_pylist()
    assert sum("blur" in r["defects"] for r in rows) == 20
    assert sum("noise" in r["defects"] for r in rows) == 0
    assert sum("watermark" in r["defects"] for r in rows) == 10


def test_exclusive_defects_never_share_a_sample(truth):
    for group in (("corrupt", "truncated"), ("too_small", "extreme_aspect"), ("off_centre", "cut_off"),
                  ("underexposed", "overexposed", "washed_out"), CAPTION_DEFECTS):
        for row in truth.values():
            assert len(set(group) & set(row["defects"])) <= 1, (row["key"], group)
    for row in truth.values():
        if "corrupt" in row["defects"]:
            assert set(row["defects"]) <= {"corrupt", *CAPTION_DEFECTS}


# -- defects: they show -------------------------------------------------------------------------

PIXEL_DEFECTS = ("blur", "noise", "underexposed", "overexposed", "washed_out", "text_overlay", "watermark")


def test_blur_lowers_sharpness(truth, members, context):
    for row in _with(truth, "blur", without=("noise", "text_overlay", "watermark", "truncated")):
        image, clean = _pair(members, context, row)
        assert _laplacian_variance(image) < 0.6 * _laplacian_variance(clean), row["key"]


def test_noise_raises_high_frequencies(truth, members, context):
    for row in _with(truth, "noise", without=("blur", "truncated")):
        image, clean = _pair(members, context, row)
        assert _laplacian_variance(image) > 3 * _laplacian_variance(clean), row["key"]


def test_exposure_defects_change_brightness_and_contrast(truth, members, context):
    for row in _with(truth, "underexposed", without=("truncated",)):
        image, clean = _pair(members, context, row)
        assert image.mean() < 0.7 * clean.mean(), row["key"]
    for row in _with(truth, "overexposed", without=("truncated",)):
        image, clean = _pair(members, context, row)
        assert image.mean() > clean.mean() + 40 or image.mean() > 230, row["key"]
    for row in _with(truth, "washed_out", without=("truncated", "noise", "text_overlay", "watermark")):
        image, clean = _pair(members, context, row)
        assert image.mean(axis=2).std() < 0.6 * clean.mean(axis=2).std(), row["key"]  # contrast
        assert image.std(axis=2).mean() < 0.5 * clean.std(axis=2).mean(), row["key"]  # colourfulness


def test_overlays_draw_text_on_the_image(truth, members, context):
    for defect in ("text_overlay", "watermark"):
        for row in _with(truth, defect, without=("truncated", "noise", "blur")):
            image, clean = _pair(members, context, row)
            reference = np.asarray(_decoded(encode_jpeg(Image.fromarray(clean.astype(np.uint8)))), float)
            changed = (np.abs(image - reference).max(axis=2) > 40).mean()
            assert changed > 0.002, row["key"]  # exactly 0 without an overlay
            assert row["overlay_text"], row["key"]
    for row in truth.values():
        if not {"text_overlay", "watermark"} & set(row["defects"]):
            assert row["overlay_text"] is None


def test_composition_defects_push_the_subject_to_an_edge(truth):
    for row in _with(truth, "off_centre"):
        x0, y0, x1, y1 = row["subject_box"]
        w, h = row["width"], row["height"]
        assert x0 >= -1 and y0 >= -1 and x1 <= w + 1 and y1 <= h + 1, row["key"]  # inside
        assert min(x0, y0, w - x1, h - y1) <= 1, row["key"]  # touching an edge
        assert row["placement"] == "edge"
    for row in _with(truth, "cut_off"):
        x0, y0, x1, y1 = row["subject_box"]
        w, h = row["width"], row["height"]
        inside = (min(x1, w) - max(x0, 0)) * (min(y1, h) - max(y0, 0)) / ((x1 - x0) * (y1 - y0))
        assert 0.3 <= inside <= 0.7, row["key"]
        assert row["placement"] == "cut_off"
    for row in truth.values():
        if row["placement"] in ("centre", "close_up") and row["subject_box"]:
            x0, y0, x1, y1 = row["subject_box"]
            assert abs((x0 + x1) / 2 - row["width"] / 2) < 0.1 * row["width"]


def test_size_defects(truth, members):
    for row in _with(truth, "too_small", without=("corrupt", "truncated")):
        assert min(_decoded(members[row["key"]]["jpg"]).size) < 128
    for row in _with(truth, "extreme_aspect", without=("corrupt", "truncated")):
        w, h = _decoded(members[row["key"]]["jpg"]).size
        assert max(w, h) / min(w, h) > 3 and min(w, h) >= 128
    for row in truth.values():
        w, h = row["width"], row["height"]
        if not {"too_small", "extreme_aspect", "corrupt"} & set(row["defects"]):
            assert min(w, h) >= 128 and max(w, h) / min(w, h) <= 2, row["key"]


def test_file_defects_break_decoding(truth, members):
    for row in _with(truth, "corrupt"):
        with pytest.raises(Exception):
            _decoded(members[row["key"]]["jpg"])
    for row in _with(truth, "truncated"):
        image = Image.open(io.BytesIO(members[row["key"]]["jpg"]))  # the header still parses
        assert image.size == (row["width"], row["height"])
        with pytest.raises(OSError):
            image.load()
    for row in truth.values():
        if not {"corrupt", "truncated"} & set(row["defects"]):
            _decoded(members[row["key"]]["jpg"])


def test_caption_defects(truth, members):
    for row in _with(truth, "empty_caption"):
        assert members[row["key"]]["txt"].decode("utf-8").strip() == ""
    for row in _with(truth, "non_utf8_caption"):
        with pytest.raises(UnicodeDecodeError):
            members[row["key"]]["txt"].decode("utf-8")
    for row in truth.values():
        if not set(CAPTION_DEFECTS) & set(row["defects"]):
            assert members[row["key"]]["txt"].decode("utf-8").strip()


def test_near_duplicates_copy_an_existing_clean_sample(truth, members):
    rows = _with(truth, "near_duplicate")
    for row in rows:
        original = truth[row["near_duplicate_of"]]
        assert original["key"] != row["key"] and original["near_duplicate_of"] is None
        assert not set(IMAGE_DEFECTS) & set(original["defects"])
        assert (row["subject_kind"], row["subject_colour"], row["background"]) == (
            original["subject_kind"], original["subject_colour"], original["background"])
        copy = _decoded(members[row["key"]]["jpg"])
        source = _decoded(members[original["key"]]["jpg"])
        # close to its original, far from an unrelated sample of the same size
        same = np.abs(np.asarray(copy.resize(source.size), float) - np.asarray(source, float)).mean()
        other = next(r for r in truth.values() if r["key"] not in (row["key"], original["key"])
                     and not r["defects"] and r["subject_kind"] != original["subject_kind"])
        unrelated = _decoded(members[other["key"]]["jpg"]).resize(source.size)
        assert same < 20 and same < 0.5 * np.abs(np.asarray(unrelated, float) - np.asarray(source, float)).mean()
    copies = {"near_duplicate", "exact_duplicate"}
    assert all(r["near_duplicate_of"] is None for r in truth.values() if not copies & set(r["defects"]))


def test_exact_duplicates_repeat_a_clean_sample_byte_for_byte(truth, members):
    rows = _with(truth, "exact_duplicate")
    assert rows
    for row in rows:
        original = truth[row["near_duplicate_of"]]
        assert not set(IMAGE_DEFECTS) & set(original["defects"])
        assert members[row["key"]]["jpg"] == members[original["key"]]["jpg"]


# -- ground truth -------------------------------------------------------------------------------


def test_ground_truth_is_consistent(pool, truth, members):
    columns = pq.read_schema(pool / "ground_truth.parquet").names
    assert columns[:3] == ["key", "shard", "sample_index"]
    assert {"subject_kind", "concept", "subject_colour", "background", "lighting", "placement", "defects",
            "weaknesses", "photogenic", "scene_caption", "near_duplicate_of", "width", "height",
            "is_upsample_candidate"} <= set(columns)
    assert sorted(truth) == sorted(members)
    photogenic = [r for r in truth.values() if r["photogenic"]]
    assert 0.2 <= len(photogenic) / N <= 0.3
    for row in truth.values():
        image_defects = set(IMAGE_DEFECTS) & set(row["defects"])
        assert row["photogenic"] == (not image_defects and not row["weaknesses"]), row["key"]
        assert row["is_upsample_candidate"] == (row["photogenic"] and min(row["width"], row["height"]) < 512)
        assert row["subject_colour"] in row["scene_caption"]
        assert len(row["scene_caption"]) > len(members[row["key"]]["txt"])
    # caption defects leave photogenic-ness alone: some photogenic samples carry one
    assert any(set(CAPTION_DEFECTS) & set(r["defects"]) for r in photogenic)
    assert sum(r["is_upsample_candidate"] for r in truth.values()) >= 0.5 * len(photogenic)
    assert len({r["concept"] for r in truth.values()}) >= 6


def test_engagement_loosely_follows_photogenic(pool, truth):
    rows = [row for shard in sorted(pool.glob("*.parquet")) if shard.name != "ground_truth.parquet"
            for row in pq.read_table(shard).to_pylist()]
    views = {True: [], False: []}
    for row in rows:
        views[truth[row["key"]]["photogenic"]].append(np.log1p(row["views"]))
    assert np.mean(views[True]) > np.mean(views[False])


# -- the stamp, reuse and refusal ---------------------------------------------------------------


def test_second_call_reuses_the_pool(out):
    first = generate_sample_pool(out, n=20, seed=1, shard_size=10, workers=1, progress=False)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    again = generate_sample_pool(out, n=20, seed=1, shard_size=10, workers=2, progress=False)
    assert again.reused and not first.reused
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    assert (again.shards, again.photogenic, again.defects) == (first.shards, first.photogenic, first.defects)
    assert again.shards == [str(out / "00000.tar"), str(out / "00001.tar")]


def test_a_different_pool_is_refused_unless_overwrite(out):
    generate_sample_pool(out, n=20, seed=1, workers=1, progress=False)
    with pytest.raises(ValueError, match="seed=1"):
        generate_sample_pool(out, n=20, seed=2, workers=1, progress=False)
    with pytest.raises(ValueError, match="overwrite"):
        generate_sample_pool(out, n=20, seed=1, shard_size=5, workers=1, progress=False)
    replaced = generate_sample_pool(out, n=12, seed=2, shard_size=5, workers=1, progress=False,
                                    overwrite=True)
    assert not replaced.reused and len(replaced.shards) == 3
    assert sorted(p.name for p in out.glob("*.tar")) == ["00000.tar", "00001.tar", "00002.tar"]


def test_damaged_pool_is_not_reused(out):
    generate_sample_pool(out, n=10, seed=1, workers=1, progress=False)
    (out / "00000.tar").write_bytes(b"truncated")
    with pytest.raises(ValueError):
        generate_sample_pool(out, n=10, seed=1, workers=1, progress=False)
    assert not generate_sample_pool(out, n=10, seed=1, workers=1, progress=False, overwrite=True).reused


def test_foreign_files_are_never_deleted(out):
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="overwrite"):
        generate_sample_pool(out, n=5, workers=1, progress=False)
    with pytest.raises(ValueError, match="notes.txt"):
        generate_sample_pool(out, n=5, workers=1, progress=False, overwrite=True)
    assert (out / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("kwargs", [{"n": 0}, {"n": 2.5}, {"shard_size": 0}, {"seed": -1}, {"workers": 0},
                                    {"n": True}])
def test_bad_arguments_are_clear_errors(out, kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        generate_sample_pool(out, **{"progress": False, **kwargs})
    assert not out.exists()


def test_bad_spec_is_a_clear_error():
    with pytest.raises(ValueError, match="blur"):
        SamplePoolSpec(blur=1.5)
    with pytest.raises(ValueError, match="underexposed"):
        SamplePoolSpec(underexposed=0.5, overexposed=0.4, washed_out=0.2)
