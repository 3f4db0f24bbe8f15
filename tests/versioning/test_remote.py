"""The DVC remote as a cluster's shared record: version records written once per version and
run, read back oldest first; a folder version's files read by md5 without a checkout."""

import json

from photogenic.versioning.remote import object_path, publish_version, read_published_versions, read_version_file


def _entry(dataset, md5, run, at):
    return {"dataset": dataset, "dvc_md5": md5, "run": {"id": run}, "recorded_at": at, "rows": 3}


def test_version_records_are_one_object_each_and_read_back_in_order(tmp_path):
    remote = str(tmp_path / "remote")
    assert read_published_versions(remote) == []
    second = publish_version(remote, _entry("candidates", "bb.dir", "run/2", "2026-12-07T02:00:00+00:00"))
    publish_version(remote, _entry("ingested", "aa.dir", "run-1", "2026-12-07T01:00:00+00:00"))
    # the same version made again by another run is another record, never a rewrite
    publish_version(remote, _entry("ingested", "aa.dir", "run-3", "2026-12-07T03:00:00+00:00"))
    assert "run_2" in second and "/" not in second.rsplit("photogenic-versions/candidates/", 1)[1]
    records = read_published_versions(remote)
    assert [(r["dataset"], r["run"]["id"]) for r in records] == [("ingested", "run-1"), ("candidates", "run/2"),
                                                                  ("ingested", "run-3")]
    # a record a killed writer left half-written is skipped, not fatal
    (tmp_path / "remote/photogenic-versions/ingested/broken.json").write_text('{"dataset": ')
    assert len(read_published_versions(remote)) == 3


def test_a_file_of_a_folder_version_is_read_by_md5(tmp_path):
    remote = str(tmp_path / "remote")
    for md5, data in (("0123456789abcdef0123456789abcdef", b"manifest bytes"),
                      ("fedcba9876543210fedcba9876543210.dir",
                       json.dumps([{"relpath": "manifest.parquet", "md5": "0123456789abcdef0123456789abcdef"}]).encode())):
        path = tmp_path / object_path("remote", md5)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    assert read_version_file(remote, "fedcba9876543210fedcba9876543210.dir", "manifest.parquet") == b"manifest bytes"
    assert read_version_file(remote, "fedcba9876543210fedcba9876543210.dir", "other.parquet") is None
    assert read_version_file(remote, "00000000000000000000000000000000.dir", "manifest.parquet") is None
