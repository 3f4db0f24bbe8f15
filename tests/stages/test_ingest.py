"""Ingest end to end on small real shards, folders and tables."""

import hashlib
import io
import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from photogenic.dataplane.parts import PARTS, ShardParts
from photogenic.dataset.store import Dataset
from photogenic.errors import DataError
from photogenic.sources.readers import iter_source
from photogenic.stages.ingest import PART_SCHEMA, ingest
from photogenic.stages.ingest import parts_fingerprint as stage_fingerprint
from photogenic.stages.ingest_worker import run_probe
from tests.conftest import config_for, image_bytes, wds_members, write_tar


def _dataset(root, name="ingested"):
    return Dataset(str(root / "datasets" / name))


def _shard(root, name, keys, seed_of=lambda k: k, **kwargs):
    members = []
    for key in keys:
        members += wds_members(f"{key:09d}", image_bytes(seed=seed_of(key)), f"photo number {key}",
                               {"url": f"https://example.com/{key}.jpg", "likes": key, "status": "success"})
    return write_tar(root / "raw" / name, members)


def test_webdataset_shards_with_brace_pattern(tmp_path):
    root = tmp_path / "data"
    _shard(root, "pool-00000.tar", range(0, 5))
    _shard(root, "pool-00001.tar", range(5, 9))
    result = ingest(config_for(root, "ingest.sources.0.uri=raw/pool-{00000..00001}.tar"), progress=False)
    assert result.ref.rows == 9 and result.ref.quarantined == 0
    rows = _dataset(root).read_manifest().to_pylist()
    assert rows[0]["source"] == "raw/pool-00000.tar#000000000"
    assert rows[0]["caption"] == "photo number 0" and rows[0]["caption_status"] == "ok"
    assert rows[0]["url"] == "https://example.com/0.jpg"
    assert rows[3]["meta_likes"] == 3.0 and json.loads(rows[3]["source_meta"])["likes"] == 3
    # every image is one ranged read whose bytes hash to the sample id
    dataset = _dataset(root)
    for row in rows:
        assert hashlib.sha256(dataset.image_bytes(row)).hexdigest() == row["sample_id"]


def test_folder_with_sidecar_captions(tmp_path):
    root = tmp_path / "data"
    folder = root / "raw" / "photos" / "sub"
    folder.mkdir(parents=True)
    (folder / "a.png").write_bytes(image_bytes(fmt="PNG", seed=1))
    (folder / "a.txt").write_text("a red car")
    (folder / "b.jpg").write_bytes(image_bytes(seed=2))  # no caption
    (folder / "notes.md").write_text("not an image")
    ingest(config_for(root, "ingest.sources.0.kind=folder", "ingest.sources.0.uri=raw/photos"), progress=False)
    rows = {r["source"]: r for r in _dataset(root).read_manifest().to_pylist()}
    assert set(rows) == {"raw/photos/sub/a.png", "raw/photos/sub/b.jpg"}
    assert rows["raw/photos/sub/a.png"]["caption"] == "a red car"
    assert rows["raw/photos/sub/b.jpg"]["caption_status"] == "missing"


def test_parquet_table_with_bytes_and_csv_table_with_paths(tmp_path):
    root = tmp_path / "data"
    (root / "raw" / "img").mkdir(parents=True)
    pd.DataFrame({
        "image": [image_bytes(seed=10), image_bytes(seed=11)],
        "text": ["first", "second"],
        "id": ["x1", "x2"],
        "views": [100, 250],
    }).to_parquet(root / "raw" / "table.parquet")
    (root / "raw" / "img" / "c.jpg").write_bytes(image_bytes(seed=12))
    (root / "raw" / "paths.csv").write_text("image,caption\nimg/c.jpg,from a csv\nimg/missing.jpg,gone\n")
    config = config_for(
        root,
        "ingest.sources.0.kind=table", "ingest.sources.0.uri=raw/table.parquet",
        "ingest.sources.0.image_column=image", "ingest.sources.0.caption_column=text", "ingest.sources.0.key_column=id",
    )
    config.ingest.sources.append(config.ingest.sources[0].model_copy(
        update={"uri": "raw/paths.csv", "caption_column": "caption", "key_column": None}))
    result = ingest(config, progress=False)
    rows = {r["source"]: r for r in _dataset(root).read_manifest().to_pylist()}
    assert set(rows) == {"raw/table.parquet#x1", "raw/table.parquet#x2", "raw/paths.csv#0"}
    assert rows["raw/table.parquet#x2"]["meta_views"] == 250.0
    assert rows["raw/paths.csv#0"]["caption"] == "from a csv"
    quarantine = _dataset(root).read_quarantine().to_pylist()
    assert result.ref.quarantined == 1
    assert quarantine[0]["source"] == "raw/paths.csv#1" and quarantine[0]["reason_code"] == "missing_image"


def test_table_without_the_configured_columns_is_a_clear_error(tmp_path):
    root = tmp_path / "data"
    (root / "raw").mkdir(parents=True)
    pd.DataFrame({"img": [b"x"], "caption": ["c"]}).to_parquet(root / "raw" / "t.parquet")
    with pytest.raises(DataError, match="no column 'image'.*image_column"):
        ingest(config_for(root, "ingest.sources.0.kind=table", "ingest.sources.0.uri=raw/t.parquet"), progress=False)


def test_missing_source_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="matches no files"):
        ingest(config_for(tmp_path / "data", "ingest.sources.0.uri=raw/none-*.tar"), progress=False)


def test_bad_samples_are_quarantined_with_reasons_and_captions_kept_raw(tmp_path):
    root = tmp_path / "data"
    good = image_bytes((64, 64), seed=5)
    members = (
        wds_members("000000000", good, "fine")
        + wds_members("000000001", good[: len(good) // 2], "truncated image")
        + wds_members("000000002", b"", "zero bytes")
        + wds_members("000000003", image_bytes(seed=6), b"caf\xe9 au lait")  # latin-1, not UTF-8
        + wds_members("000000004", image_bytes(seed=7), "   \n\t ")
        + wds_members("000000005", image_bytes(seed=8), b"\x00\x01\x02binary\x00")
        + wds_members("000000006", None, "caption without image", {"status": "failed_to_download", "error_message": "404"})
        + [("000000007.jpg", image_bytes(seed=9)), ("000000007.json", b"{not json")]
    )
    write_tar(root / "raw" / "bad.tar", members)
    result = ingest(config_for(root, "ingest.sources.0.uri=raw/bad.tar"), progress=False)
    quarantine = {r["source"].split("#")[1]: r for r in _dataset(root).read_quarantine().to_pylist()}
    assert {k: v["reason_code"] for k, v in quarantine.items()} == {
        "000000001": "truncated", "000000002": "empty_file", "000000006": "download_failed",
    }
    assert result.ref.rows == 5 and result.ref.quarantined == 3
    rows = {r["source"].split("#")[1]: r for r in _dataset(root).read_manifest().to_pylist()}
    assert rows["000000003"]["caption"] is None and rows["000000003"]["caption_status"] == "not_utf8"
    assert rows["000000003"]["caption_raw"] == b"caf\xe9 au lait"  # nothing is lost
    assert rows["000000004"]["caption_status"] == "empty"
    assert rows["000000005"]["caption_status"] == "binary"
    assert "metadata_error" in json.loads(rows["000000007"]["source_meta"])


def test_long_captions_are_truncated_with_the_original_kept(tmp_path):
    root = tmp_path / "data"
    caption = "word " * 100
    write_tar(root / "raw" / "a.tar", wds_members("000000000", image_bytes(), caption))
    ingest(config_for(root, "ingest.sources.0.uri=raw/a.tar", "ingest.max_caption_chars=50"), progress=False)
    row = _dataset(root).read_manifest().to_pylist()[0]
    assert row["caption_status"] == "truncated" and len(row["caption"]) <= 50 and row["caption"].endswith("word")
    assert row["caption_raw"] == caption.encode()


def test_exact_duplicates_collapse_keeping_every_source(tmp_path):
    root = tmp_path / "data"
    _shard(root, "a.tar", range(6), seed_of=lambda k: k % 3)  # keys 3,4,5 repeat images 0,1,2
    result = ingest(config_for(root, "ingest.sources.0.uri=raw/a.tar"), progress=False)
    assert result.ref.rows == 3 and result.stats.duplicates == 3
    rows = _dataset(root).read_manifest().to_pylist()
    assert rows[0]["sources"] == ["raw/a.tar#000000000", "raw/a.tar#000000003"]
    assert len(list((root / "datasets" / "ingested" / "shards").glob("*.tar"))) == 1


def test_reingest_adds_nothing_and_a_new_shard_adds_only_its_samples(tmp_path):
    root = tmp_path / "data"
    _shard(root, "p-0.tar", range(0, 4))
    config = config_for(root, "ingest.sources.0.uri=raw/p-*.tar")
    first = ingest(config, progress=False)
    shard_files = sorted((root / "datasets" / "ingested" / "shards").iterdir())
    manifest_bytes = (root / "datasets" / "ingested" / "manifest.parquet").read_bytes()

    again = ingest(config, progress=False)
    assert again.stats.added == 0 and again.stats.skipped_known == 4
    assert again.ref.content_hash == first.ref.content_hash
    assert (root / "datasets" / "ingested" / "manifest.parquet").read_bytes() == manifest_bytes

    _shard(root, "p-1.tar", range(4, 7), seed_of=lambda k: k if k != 6 else 0)  # key 6 duplicates key 0
    more = ingest(config, progress=False)
    assert more.stats.added == 2 and more.stats.duplicates == 1 and more.stats.skipped_known == 4
    assert more.ref.rows == 6
    new_files = sorted((root / "datasets" / "ingested" / "shards").iterdir())
    assert new_files[: len(shard_files)] == shard_files and len(new_files) == len(shard_files) + 1
    for old in shard_files:  # earlier shards are never rewritten
        assert old.stat().st_mtime_ns == next(f for f in new_files if f == old).stat().st_mtime_ns
    first_row = _dataset(root).read_manifest().to_pylist()[0]
    assert first_row["sources"] == ["raw/p-0.tar#000000000", "raw/p-1.tar#000000006"]


def test_interrupted_run_resumes_from_its_finished_input_shards_to_the_same_dataset(tmp_path, monkeypatch):
    root, clean_root = tmp_path / "data", tmp_path / "clean"
    for folder in (root, clean_root):
        for n in range(3):
            _shard(folder, f"p-{n}.tar", range(4 * n, 4 * n + 4))
    overrides = ("ingest.sources.0.uri=raw/p-*.tar", "ingest.shard_max_images=3")
    clean = ingest(config_for(clean_root, *overrides), progress=False)

    import photogenic.stages.ingest as stage

    real_record, calls = stage._record, {"n": 0}

    def crash_in_the_third_input_shard(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 10:
            raise KeyboardInterrupt("simulated kill")
        return real_record(*args, **kwargs)

    monkeypatch.setattr(stage, "_record", crash_in_the_third_input_shard)
    with pytest.raises(KeyboardInterrupt):
        ingest(config_for(root, *overrides), progress=False)
    monkeypatch.setattr(stage, "_record", real_record)
    folder = root / "datasets" / "ingested"
    assert not (folder / "manifest.parquet").exists()  # the manifest is written once, at the end
    assert len(list((folder / PARTS).glob("part-*.parquet"))) == 2  # the two finished input shards
    assert not list(folder.rglob("*.tmp-*"))

    probed = []
    monkeypatch.setattr(stage, "run_probe", lambda task: probed.append(task) or run_probe(task))
    resumed = ingest(config_for(root, *overrides), progress=False)
    assert len(probed) == 4  # only the third input shard is decoded again
    assert resumed.ref.content_hash == clean.ref.content_hash and not (folder / PARTS).exists()
    for name in ("shard-000000.tar", "shard-000001.tar", "shard-000002.tar", "shard-000003.tar"):
        assert (folder / "shards" / name).read_bytes() == (clean_root / "datasets/ingested/shards" / name).read_bytes()
    for name in ("manifest.parquet", "quarantine.parquet", "dataset.json"):
        assert (folder / name).read_bytes() == (clean_root / "datasets/ingested" / name).read_bytes()


def test_a_part_whose_input_shard_changed_since_is_not_used(tmp_path, monkeypatch):
    root = tmp_path / "data"
    _shard(root, "p-0.tar", range(4))
    config = config_for(root, "ingest.sources.0.uri=raw/p-*.tar")
    parts = ShardParts(str(root / "datasets" / "ingested" / PARTS), stage_fingerprint(_dataset(root), config))
    _shard(root, "p-0.tar", range(4), seed_of=lambda k: k + 50)  # other images under the same keys
    [sample, *_] = iter_source(config.ingest.sources[0], str(root))
    stale = {"source": sample.source, "sample_id": "0" * 64, "length": 1, "caption_status": "ok"}
    parts.write(f"0\t{sample.unit}", pa.Table.from_pylist([stale] * 4, schema=PART_SCHEMA))
    result = ingest(config, progress=False)
    assert result.ref.rows == 4 and "0" * 64 not in _dataset(root).read_manifest()["sample_id"].to_pylist()


def test_orphan_shards_from_a_killed_run_are_removed(tmp_path):
    root = tmp_path / "data"
    _shard(root, "p.tar", range(3))
    config = config_for(root, "ingest.sources.0.uri=raw/p.tar")
    ingest(config, progress=False)
    shards = root / "datasets" / "ingested" / "shards"
    (shards / "shard-000001.tar").write_bytes(b"half a shard from a killed run")
    (shards / "shard-000002.tar.tmp-writing").write_bytes(b"temp")
    ingest(config, progress=False)
    assert sorted(p.name for p in shards.iterdir()) == ["shard-000000.tar"]


def test_truncated_tar_keeps_what_was_readable_and_quarantines_the_rest(tmp_path):
    root = tmp_path / "data"
    path = _shard(root, "p.tar", range(4))
    data = path.read_bytes()
    path.write_bytes(data[:9000])  # ends inside the second sample
    result = ingest(config_for(root, "ingest.sources.0.uri=raw/p.tar"), progress=False)
    assert result.ref.rows >= 1
    reasons = {r["reason_code"] for r in _dataset(root).read_quarantine().to_pylist()}
    assert reasons == {"unreadable_shard"}


def test_manifest_records_shard_offsets_that_match_the_tar(tmp_path):
    import tarfile

    root = tmp_path / "data"
    _shard(root, "p.tar", range(3))
    ingest(config_for(root, "ingest.sources.0.uri=raw/p.tar"), progress=False)
    rows = _dataset(root).read_manifest().to_pylist()
    shard = root / "datasets" / "ingested" / rows[0]["shard"]
    with tarfile.open(shard) as tar:
        members = {m.name: m for m in tar.getmembers()}
    for row in rows:
        member = members[f"{row['sample_id']}.jpg"]
        assert (member.offset_data, member.size) == (row["offset"], row["length"])
    assert pq.read_metadata(root / "datasets" / "ingested" / "manifest.parquet").num_rows == 3
    assert Image.open(io.BytesIO(_dataset(root).image_bytes(rows[0]))).size == (64, 48)


def test_overlapping_sources_count_each_sample_once(tmp_path):
    root = tmp_path / "data"
    _shard(root, "p-0.tar", range(3))
    config = config_for(root, "ingest.sources.0.uri=raw/p-*.tar")
    config.ingest.sources.append(config.ingest.sources[0].model_copy(update={"uri": "raw/p-0.tar"}))
    result = ingest(config, progress=False)
    assert result.ref.rows == 3 and result.stats.skipped_known == 3 and result.stats.duplicates == 0
    assert all(len(row["sources"]) == 1 for row in _dataset(root).read_manifest().to_pylist())


def test_a_source_without_samples_gives_an_empty_dataset_that_fails_its_gate(tmp_path):
    from photogenic.errors import QualityGateError
    from photogenic.stages.runner import check_output

    root = tmp_path / "data"
    write_tar(root / "raw" / "empty.tar", [])
    config = config_for(root, "ingest.sources.0.uri=raw/empty.tar")
    result = ingest(config, progress=False)
    assert result.ref.rows == 0 and _dataset(root).exists()
    with pytest.raises(QualityGateError, match="expect_table_row_count_to_be_between"):
        check_output("ingest", result.ref, config)
