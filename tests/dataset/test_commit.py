"""A dataset version's files become visible together: a run killed at any write leaves the
previous version or the new one, whole; a disk that fills up fails the stage with a message and
leaves the previous version intact."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from photogenic.dataset.atomic import TMP_MARK, read_text, write_text
from photogenic.dataset.commit import JOURNAL, VersionCommit, settle
from photogenic.dataset.schema import QUARANTINE_SCHEMA
from photogenic.dataset.store import Dataset
from photogenic.errors import StorageError
from photogenic.stages.runner import run_stage
from tests.conftest import REPO, config_for, image_bytes, make_captioned, wds_members, write_tar
from tests.support.faults import COUNT_ENV


def _snapshot(folder: Path) -> dict[str, bytes]:
    """The version in ``folder`` as a reader finds it: an interrupted commit is finished first;
    temporaries a killed writer left are not part of any version."""
    Dataset(str(folder)).exists()  # settles
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and TMP_MARK not in p.name}


def _restore(folder: Path, saved: Path) -> None:
    shutil.rmtree(folder)
    shutil.copytree(saved, folder)


def _kill_at_every_write(tmp_path: Path, stage: str, config, folder: Path) -> list[tuple[int, dict]]:
    """Run ``stage`` once per write, killed at that write, from the same previous version each
    time; returns (write number, what a reader then finds), and finally runs it unharmed."""
    saved = tmp_path / "previous-version"
    shutil.copytree(folder, saved)
    config_file = tmp_path / "run.yaml"
    config_file.write_text(yaml.safe_dump(config.resolved()))
    env = {**os.environ, "PYTHONPATH": str(REPO), COUNT_ENV: str(tmp_path / "writes")}
    found, n = [], 1
    while True:
        _restore(folder, saved)
        done = subprocess.run([sys.executable, "-m", "tests.support.faults", "kill", str(n), stage, str(config_file)],
                              env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        if done.returncode == 0:  # past the last write: nothing was killed
            assert int((tmp_path / "writes").read_text()) == n - 1
            return found
        assert done.returncode == -9, done.stderr
        found.append((n, _snapshot(folder)))
        n += 1


def test_package_killed_at_every_write_leaves_one_whole_version(tmp_path):
    root = tmp_path / "data"
    make_captioned(root)
    config = config_for(root, "upsample.workers=0", "package.workers=0", "package.shard_max_images=3")
    run_stage("upsample", config, progress=False)
    run_stage("package", config, progress=False)
    folder = root / "datasets" / "training_set"
    old = _snapshot(folder)
    # new pixels in fewer shards: the shards keep their names, new bytes, and the last one goes
    new_config = config_for(root, "upsample.workers=0", "package.workers=0", "package.shard_max_images=4",
                            "package.resolution=64")
    found = _kill_at_every_write(tmp_path, "package", new_config, folder)
    new = _snapshot(folder)  # the unharmed run's version
    assert new != old and len(found) >= 12
    assert "shards/shard-000002.tar" in old and "shards/shard-000002.tar" not in new
    assert new["shards/shard-000000.tar"] != old["shards/shard-000000.tar"] and new["README.md"] != old["README.md"]
    olds = [n for n, seen in found if seen == old]
    news = [n for n, seen in found if seen == new]
    assert sorted(olds + news) == [n for n, _ in found], "a kill left a mix of two versions"
    assert olds and news and max(olds) < min(news)  # one commit point: old before it, new after


def test_ingest_killed_at_every_write_keeps_a_whole_manifest_and_its_shards(tmp_path):
    root = tmp_path / "data"
    write_tar(root / "raw" / "00000.tar", [m for i in range(4) for m in wds_members(f"a{i}", image_bytes(seed=i), "a")])
    config = config_for(root, "ingest.sources.0.uri=raw/*.tar")
    run_stage("ingest", config, progress=False)
    folder = root / "datasets" / "ingested"
    tables = ("manifest.parquet", "quarantine.parquet", "dataset.json")
    old = {k: v for k, v in _snapshot(folder).items() if k in tables}
    write_tar(root / "raw" / "00001.tar", [m for i in range(4) for m in wds_members(f"b{i}", image_bytes(seed=9 + i),
                                                                                    "b")]
              + wds_members("bad", b"not an image", "c"))
    found = _kill_at_every_write(tmp_path, "ingest", config, folder)
    new = {k: v for k, v in _snapshot(folder).items() if k in tables}
    assert new != old and len(found) >= 6
    for n, seen in found:
        assert {k: v for k, v in seen.items() if k in tables} in (old, new), f"a kill at write {n} mixed versions"
        manifest = pq.read_table(io.BytesIO(seen["manifest.parquet"]))
        for shard in set(manifest["shard"].to_pylist()):
            assert shard in seen, f"write {n}: the manifest points at a missing shard"


def test_a_journal_is_finished_by_the_next_reader(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "a.txt").write_text("old a")
    (folder / "b.txt").write_text("old b")
    (folder / "gone.txt").write_text("dropped by the new version")
    commit = VersionCommit(str(folder))
    commit.add("a.txt", b"new a")
    commit.add("b.txt", b"new b")
    commit.remove("gone.txt")
    # the journal is written (the commit point), then the process dies before any rename
    import json

    journal = {"renames": [[s.tmp[len(str(folder)) + 1:], s.target[len(str(folder)) + 1:]] for s in commit.staged],
               "remove": ["gone.txt"]}
    (folder / JOURNAL).write_text(json.dumps(journal))
    assert (folder / "a.txt").read_text() == "old a"
    assert settle(str(folder))
    assert (folder / "a.txt").read_text() == "new a" and (folder / "b.txt").read_text() == "new b"
    assert sorted(p.name for p in folder.iterdir()) == ["a.txt", "b.txt"]
    assert not settle(str(folder))  # nothing left to finish


# -- a full disk --------------------------------------------------------------------------------


def test_a_full_disk_fails_the_stage_with_a_message_and_keeps_the_previous_version(tmp_path):
    root = tmp_path / "data"
    make_captioned(root)
    config = config_for(root, "upsample.workers=0", "package.workers=0")
    run_stage("upsample", config, progress=False)
    run_stage("package", config, progress=False)
    folder = root / "datasets" / "training_set"
    old = _snapshot(folder)
    config_file = tmp_path / "params.yaml"
    config_file.write_text(yaml.safe_dump(config_for(root, "upsample.workers=0", "package.workers=0",
                                                     "package.resolution=64").resolved()))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for budget in (0, 20_000, 60_000):  # out of space at once, inside a shard, at the tables
        done = subprocess.run([sys.executable, "-m", "tests.support.faults", "full", str(budget), "step", "package", "--quiet",
                               "--config", str(config_file)], env=env, cwd=tmp_path, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 2, done.stderr
        assert "No space left to write" in done.stderr and "intact" in done.stderr
        assert "Traceback" not in done.stderr
        assert _snapshot(folder) == old
        assert not [p for p in folder.rglob("*") if TMP_MARK in p.name]  # no half-written temporaries left


def test_storage_error_is_raised_for_enospc_in_process(tmp_path, monkeypatch):
    import errno

    import photogenic.dataset.atomic as atomic

    dataset = Dataset(str(tmp_path / "d"))
    dataset.write(pa.table({"sample_id": ["a"]}), QUARANTINE_SCHEMA.empty_table(), {"v": 1})
    before = _snapshot(tmp_path / "d")

    class Full:
        def __init__(self, *args, **kwargs):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic, "open", Full, raising=False)
    with pytest.raises(StorageError, match="No space left to write"):
        dataset.write(pa.table({"sample_id": ["b"]}), QUARANTINE_SCHEMA.empty_table(), {"v": 2})
    monkeypatch.undo()
    assert _snapshot(tmp_path / "d") == before


def test_files_and_versions_on_an_object_store_get_their_names(tmp_path):
    # an fsspec URL (S3 on a cluster; memory:// here) keeps its protocol through staging and renaming
    folder = f"memory://photogenic-test-{tmp_path.name}/versions"
    write_text(f"{folder}/record.json", "{}\n")
    assert read_text(f"{folder}/record.json") == "{}\n"
    commit = VersionCommit(folder)
    commit.add("a.txt", b"a")
    commit.add("b.txt", b"b")
    commit.commit(last="b.txt")
    fs = fsspec.filesystem("memory")
    assert sorted(p.rsplit("/", 1)[-1] for p in fs.ls(f"/photogenic-test-{tmp_path.name}/versions", detail=False)) \
        == ["a.txt", "b.txt", "record.json"]
