"""Untrusted sources cannot reach outside the data, and nothing they hold is dropped unrecorded:
table cells and folder links that point elsewhere, hostile tar members, size limits checked
before anything is read, and metadata that would flood the manifest with columns."""

from __future__ import annotations

import io
import json
import os
import tarfile

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from photogenic.dataset.store import Dataset
from photogenic.stages.ingest import MAX_META_COLUMNS, ingest
from tests.conftest import config_for, image_bytes, wds_members, write_tar


def _outcomes(root):
    dataset = Dataset(str(root / "datasets" / "ingested"))
    kept = {s: r for r in dataset.read_manifest().to_pylist() for s in r["sources"]}
    quarantined = {r["source"]: r for r in dataset.read_quarantine().to_pylist()}
    return kept, quarantined


def _tar(path, members):
    """members: (TarInfo-adjusting callable or bytes) per name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for name, spec in members:
            info = tarfile.TarInfo(name)
            if isinstance(spec, bytes):
                info.size = len(spec)
                tar.addfile(info, io.BytesIO(spec))
            else:
                spec(info)
                tar.addfile(info)
    return path


def _link(target, kind=tarfile.SYMTYPE):
    def make(info):
        info.type, info.linkname = kind, target
    return make


def _device(kind):
    def make(info):
        info.type, info.devmajor, info.devminor = kind, 1, 3
    return make


# -- tables ---------------------------------------------------------------------------------------


def test_table_cells_cannot_name_files_outside_the_data_or_urls(tmp_path):
    root = tmp_path / "data"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.png").write_bytes(image_bytes(fmt="PNG", seed=1))
    (outside / "secret_rel.png").write_bytes(image_bytes(fmt="PNG", seed=2))
    (root / "raw" / "images").mkdir(parents=True)
    (root / "raw" / "images" / "ok.png").write_bytes(image_bytes(fmt="PNG", seed=3))
    os.symlink(outside / "secret.png", root / "raw" / "images" / "link.png")
    cells = {"abs": str(outside / "secret.png"), "climb": "../../outside/secret_rel.png",
             "file-url": (outside / "secret.png").as_uri(), "http": "http://127.0.0.1:9/secret.png",
             "chained": f"simplecache::{(outside / 'secret.png').as_uri()}", "link": "images/link.png",
             "ok": "images/ok.png"}
    pq.write_table(pa.table({"key": list(cells), "image": list(cells.values()), "caption": ["c"] * len(cells)}),
                   root / "raw" / "table.parquet")
    ingest(config_for(root, "ingest.sources.0.kind=table", "ingest.sources.0.uri=raw/table.parquet",
                      "ingest.sources.0.key_column=key"), progress=False)
    kept, quarantined = _outcomes(root)
    assert set(kept) == {"raw/table.parquet#ok"}
    for key in ("abs", "climb", "file-url", "http", "chained", "link"):
        row = quarantined[f"raw/table.parquet#{key}"]
        assert row["reason_code"] == "unsafe_path" and row["sample_id"] is None, key


def test_table_with_wrong_types_and_duplicate_keys_records_every_row(tmp_path):
    root = tmp_path / "data"
    (root / "raw").mkdir(parents=True)
    good = image_bytes(seed=4)
    pq.write_table(pa.table({"key": ["a", "a", "b", "c"], "image": pa.array([good, image_bytes(seed=5), b"", None]),
                             "caption": ["one", "two", "three", "four"], "views": [1, 2, 3, 4]}),
                   root / "raw" / "t.parquet")
    ingest(config_for(root, "ingest.sources.0.kind=table", "ingest.sources.0.uri=raw/t.parquet",
                      "ingest.sources.0.key_column=key"), progress=False)
    kept, quarantined = _outcomes(root)
    assert set(kept) == {"raw/t.parquet#a"}
    assert quarantined["raw/t.parquet#a (row 2)"]["reason_code"] == "duplicate_key"
    assert quarantined["raw/t.parquet#b"]["reason_code"] == "empty_file"
    assert quarantined["raw/t.parquet#c"]["reason_code"] == "missing_image"

    # columns of the wrong type: numbers where a path and a caption belong
    (root / "raw" / "t.parquet").unlink()
    pq.write_table(pa.table({"image": [7, 8], "caption": [1, 2]}), root / "raw" / "numbers.parquet")
    pq.write_table(pa.table({"image": ["images/x.jpg"], "caption": [3]}), root / "raw" / "caption.parquet")
    (root / "raw" / "images").mkdir()
    (root / "raw" / "images" / "x.jpg").write_bytes(image_bytes(seed=9))
    for name in ("numbers", "caption"):
        ingest(config_for(root, "ingest.sources.0.kind=table", f"ingest.sources.0.uri=raw/{name}.parquet"),
               progress=False)
    kept, quarantined = _outcomes(root)
    assert quarantined["raw/numbers.parquet#0"]["reason_code"] == "bad_image_cell"
    assert quarantined["raw/numbers.parquet#1"]["reason_code"] == "bad_image_cell"
    row = kept["raw/caption.parquet#0"]  # the image is fine; the caption is recorded as unusable
    assert row["caption"] is None and "caption cell holds int" in json.loads(row["source_meta"])["metadata_error"]


# -- folders --------------------------------------------------------------------------------------


def test_folder_source_never_follows_links_out_of_the_folder(tmp_path):
    root = tmp_path / "data"
    folder = root / "raw" / "photos"
    folder.mkdir(parents=True)
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "secret.jpg").write_bytes(image_bytes(seed=1))
    (outside / "sub" / "deep.jpg").write_bytes(image_bytes(seed=2))
    (outside / "caption.txt").write_text("a secret caption")
    (folder / "ok.jpg").write_bytes(image_bytes(seed=3))
    os.symlink(outside / "caption.txt", folder / "ok.txt")  # a sidecar that points out: not read
    os.symlink(outside / "secret.jpg", folder / "escape.jpg")
    os.symlink(outside / "sub", folder / "linked")
    (folder / "inner.jpg").write_bytes(image_bytes(seed=4))
    os.symlink(folder / "inner.jpg", folder / "alias.jpg")  # a link inside the folder is fine
    ingest(config_for(root, "ingest.sources.0.kind=folder", "ingest.sources.0.uri=raw/photos"), progress=False)
    kept, quarantined = _outcomes(root)
    assert set(kept) == {"raw/photos/ok.jpg", "raw/photos/inner.jpg", "raw/photos/alias.jpg"}
    assert kept["raw/photos/ok.jpg"]["caption"] is None
    assert "link out of the folder" in json.loads(kept["raw/photos/ok.jpg"]["source_meta"])["metadata_error"]
    assert quarantined["raw/photos/escape.jpg"]["reason_code"] == "unsafe_path"
    assert quarantined["raw/photos/linked"]["reason_code"] == "unsafe_path"
    assert not any("deep" in s for s in list(kept) + list(quarantined))


# -- tar members ----------------------------------------------------------------------------------


def test_links_and_devices_in_a_shard_are_never_read_and_say_so(tmp_path):
    root = tmp_path / "data"
    _tar(root / "raw" / "00000.tar", [
        ("a.jpg", _link("/etc/passwd")), ("a.txt", b"symlinked image"),
        ("b.jpg", image_bytes(seed=1)), ("c.jpg", _link("b.jpg", tarfile.LNKTYPE)),
        ("d.jpg", _device(tarfile.CHRTYPE)), ("e.jpg", _device(tarfile.BLKTYPE)), ("f.jpg", _device(tarfile.FIFOTYPE)),
        ("g.jpg", image_bytes(seed=2)), ("g.txt", _link("../../etc/hostname")),
    ])
    ingest(config_for(root, "ingest.sources.0.uri=raw/*.tar"), progress=False)
    kept, quarantined = _outcomes(root)
    assert set(kept) == {"raw/00000.tar#b"}
    for key, kind in (("a", "symbolic link"), ("c", "hard link"), ("d", "character device"), ("e", "block device"),
                      ("f", "FIFO"), ("g", "symbolic link")):
        row = quarantined[f"raw/00000.tar#{key}"]
        assert row["reason_code"] == "unsafe_member" and kind in row["reason"], key


def test_split_and_repeated_keys_are_recorded_not_dropped(tmp_path):
    root = tmp_path / "data"
    write_tar(root / "raw" / "00000.tar", [
        ("a.jpg", image_bytes(seed=1)), ("b.jpg", image_bytes(seed=2)), ("a.txt", b"the caption of a"),
        ("c.jpg", image_bytes(seed=3)), ("c.jpg", image_bytes(seed=4)),  # one extension twice
        ("d.jpg", image_bytes(seed=5)), ("d.png", image_bytes(fmt="PNG", seed=6)),  # two images
        ("/abs/e.jpg", image_bytes(seed=7)), ("../f.jpg", image_bytes(seed=8)),
    ])
    ingest(config_for(root, "ingest.sources.0.uri=raw/*.tar"), progress=False)
    kept, quarantined = _outcomes(root)
    assert set(kept) == {"raw/00000.tar#a", "raw/00000.tar#b"}
    part = quarantined["raw/00000.tar#a (part 2)"]
    assert part["reason_code"] == "split_key" and "after another key" in part["reason"]
    assert quarantined["raw/00000.tar#c"]["reason_code"] == "duplicate_member"
    assert quarantined["raw/00000.tar#d"]["reason_code"] == "multiple_images"
    assert quarantined["raw/00000.tar#/abs/e"]["reason_code"] == "unsafe_member"
    assert quarantined["raw/00000.tar#../f"]["reason_code"] == "unsafe_member"
    # ingesting again adds nothing: every occurrence is known
    again = ingest(config_for(root, "ingest.sources.0.uri=raw/*.tar"), progress=False)
    assert again.stats.added == 0 and again.stats.quarantined == 0


# -- sizes ----------------------------------------------------------------------------------------


def test_an_image_over_the_limit_is_never_read_or_sent_to_a_worker(tmp_path, monkeypatch):
    import photogenic.stages.ingest as ingest_module

    sent = []
    original = ingest_module.run_probe

    def recording(task):
        sent.append(len(task.image or b""))
        return original(task)

    monkeypatch.setattr(ingest_module, "run_probe", recording)
    root = tmp_path / "data"
    big, small = image_bytes((400, 300), fmt="PNG", seed=1), image_bytes(seed=2)
    write_tar(root / "raw" / "00000.tar", wds_members("big", big, "a big one") + wds_members("small", small, "ok"))
    ingest(config_for(root, "ingest.sources.0.uri=raw/*.tar", f"ingest.max_image_bytes={len(small) + 10}"),
           progress=False)
    kept, quarantined = _outcomes(root)
    assert set(kept) == {"raw/00000.tar#small"}
    row = quarantined["raw/00000.tar#big"]
    assert row["reason_code"] == "file_too_large" and row["length"] == len(big) and row["sample_id"] is None
    assert max(sent) <= len(small)  # the big image's bytes never left the reader


def test_huge_caption_and_metadata_sidecars_are_capped(tmp_path):
    root = tmp_path / "data"
    caption = ("word " * 500_000).encode()  # 2.5 MB
    meta = {f"score_{i}": i for i in range(300)} | {"url": "https://example.com/x.jpg", "likes": 7}
    members = wds_members("a", image_bytes(seed=1), caption) + wds_members("b", image_bytes(seed=2), "b", meta)
    members += wds_members("c", image_bytes(seed=3), "c", None) + [("c.json", b"[" * 40 + b"1" * 2**21)]
    write_tar(root / "raw" / "00000.tar", members)
    ingest(config_for(root, "ingest.sources.0.uri=raw/*.tar"), progress=False)
    dataset = Dataset(str(root / "datasets" / "ingested"))
    rows = {r["source"]: r for r in dataset.read_manifest().to_pylist()}
    a = rows["raw/00000.tar#a"]
    assert a["caption"] is None and a["caption_status"] == "too_large" and a["caption_raw"] is None
    names = dataset.manifest_schema().names
    assert len([n for n in names if n.startswith("meta_")]) == MAX_META_COLUMNS
    b = json.loads(rows["raw/00000.tar#b"]["source_meta"])
    assert b["score_299"] == 299 and b["likes"] == 7 and "meta_likes" not in names  # kept, but not as a column
    c = json.loads(rows["raw/00000.tar#c"]["source_meta"])
    assert "over the limit" in c["metadata_error"]
    assert dataset.read_card()["caption_status"]["too_large"] == 1


def test_pillows_own_pixel_limit_does_not_override_a_larger_config(tmp_path, monkeypatch):
    # Pillow's process-wide limit (89.5 Mpx by default) stood in for ingest.max_pixels when lower;
    # a smaller stand-in limit shows the same without decoding 90 Mpx
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    root = tmp_path / "data"
    write_tar(root / "raw" / "00000.tar", wds_members("a", image_bytes((60, 50), seed=1), "fits the config")
              + wds_members("b", image_bytes((120, 100), seed=2), "over the config"))
    ingest(config_for(root, "ingest.sources.0.uri=raw/*.tar", "ingest.max_pixels=10000"), progress=False)
    kept, quarantined = _outcomes(root)
    assert set(kept) == {"raw/00000.tar#a"}
    assert quarantined["raw/00000.tar#b"]["reason_code"] == "decompression_bomb"
    assert "ingest.max_pixels" in quarantined["raw/00000.tar#b"]["reason"]
