"""The Great Expectations quality gate: the ingest suite catches each kind of broken manifest,
says what failed in words, writes Data Docs beside the dataset, and writes nothing else."""

import hashlib
import json
import socket

import pyarrow as pa
import pytest
from pydantic import ValidationError

from photogenic.dataset.schema import CAPTION_MISSING, CAPTION_OK, CAPTION_TRUNCATED, manifest_schema
from photogenic.errors import PhotogenicError
from photogenic.quality import GateResult, IngestGateParams, QualityGateError, known_kinds, run_gate


def valid_rows(n: int) -> list[dict]:
    """Manifest rows as the ingest stage writes them (see photogenic/dataset/schema.py)."""
    rows = []
    for i in range(n):
        key = f"{i:09d}"
        rows.append({
            "sample_id": hashlib.sha256(key.encode()).hexdigest(),
            "shard": "shards/00000.tar",
            "offset": 512 * (2 * i + 1),
            "length": 1000 + i,
            "format": "JPEG",
            "width": 64,
            "height": 48,
            "mode": "RGB",
            "orientation": 1,
            "source_kind": "webdataset",
            "source": f"raw/00000.tar#{key}",
            "sources": [f"raw/00000.tar#{key}"],
            "url": None,
            "caption": f"a photo of thing {i}",
            "caption_source": "source",
            "caption_status": CAPTION_OK,
            "caption_raw": None,
            "source_meta": "{}",
        })
    # the other caption outcomes ingest produces
    rows[-1].update(caption=None, caption_source=None, caption_status=CAPTION_MISSING)
    rows[-2].update(caption="a long caption cut at a word", caption_status=CAPTION_TRUNCATED, caption_raw=b"...")
    return rows


def manifest(n: int = 6):
    """A valid manifest DataFrame, read the way the runners read it (Arrow → pandas)."""
    return pa.Table.from_pylist(valid_rows(n), schema=manifest_schema()).to_pandas()


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the quality gate tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def gate(frame, tmp_path, quarantine_rows=0, **params):
    return run_gate("ingest", frame, quarantine_rows=quarantine_rows, params=params, docs_dir=tmp_path / "ds.quality")


def test_a_valid_manifest_passes_and_writes_data_docs_only(tmp_path, no_network):
    before = set(tmp_path.iterdir())
    frame = manifest()
    original = frame.copy()

    result = gate(frame, tmp_path, quarantine_rows=0)

    assert result.success, result.failed
    assert result.failed == []
    assert result.statistics["evaluated"] == result.statistics["successful"] > 15
    assert result.statistics["unsuccessful"] == 0
    result.raise_for_failure()  # no-op
    index = tmp_path / "ds.quality" / "index.html"
    summary = tmp_path / "ds.quality" / "gate.html"
    assert result.docs_index == str(summary)
    html = index.read_text()
    assert "ingest" in html and "validations/ingest/" in html
    # the self-contained summary lists every expectation and links GE's validation pages
    text = summary.read_text()
    assert "passed" in text and text.count("✓") == result.statistics["evaluated"] and "✗" not in text
    assert "expect_column_values_to_be_unique(sample_id)" in text and "validations/ingest/" in text
    assert "http" not in text.replace("http-equiv", "")  # nothing loaded from outside
    pages = list((tmp_path / "ds.quality" / "validations").rglob("*.html"))
    assert len(pages) == 2  # the manifest suite and the dataset statistics suite
    page = next(p for p in pages if p.name == "ingest-manifest.html").read_text()
    assert 'expectations/ingest.html" >ingest</a>' in page and "must be unique" in page
    # nothing else in the working directory (no gx/ folder) and nothing in HOME
    assert set(tmp_path.iterdir()) - before == {tmp_path / "ds.quality"}
    assert list((tmp_path / "home").iterdir()) == []
    frame.equals(original) or pytest.fail("run_gate modified the manifest")
    meta = json.loads(json.dumps(result.to_dict()))
    assert meta["success"] is True and meta["docs_index"] == str(summary)
    assert meta["dataset"] == {"rows": 6, "quarantine_rows": 0, "quarantine_share": 0.0}
    assert meta["params"] == IngestGateParams().model_dump()


def _duplicate_id(df):
    df.loc[1, "sample_id"] = df.loc[0, "sample_id"]


def _set(column, value, row=0):
    def mutate(df):
        df.loc[row, column] = value
    return mutate


#: one broken manifest per expectation: how to break a valid one, and the start of the failure line
BROKEN = {
    "duplicate-sample-id": (_duplicate_id, "expect_column_values_to_be_unique(sample_id): 2 of 6 values are "
                                           "duplicates"),
    "bad-sample-id": (_set("sample_id", "not-a-sha256"), "expect_column_values_to_match_regex(sample_id"),
    "null-shard": (_set("shard", None), "expect_column_values_to_not_be_null(shard): 1 of 6 values are null, "
                                        "e.g. sample_id"),
    "negative-offset": (_set("offset", -1), "expect_column_values_to_be_between(offset, min_value=0)"),
    "zero-length": (_set("length", 0), "expect_column_values_to_be_between(length, min_value=1)"),
    "zero-width": (_set("width", 0), "expect_column_values_to_be_between(width, min_value=1): 1 of 6 values are "
                                     "unexpected, e.g. [0]"),
    "zero-height": (_set("height", 0), "expect_column_values_to_be_between(height, min_value=1)"),
    "unknown-format": (_set("format", "XCF"), "expect_column_values_to_be_in_set(format, value_set=['JPEG'"),
    "unknown-caption-status": (_set("caption_status", "mangled", row=5),
                               "expect_column_values_to_be_in_set(caption_status"),
    "caption-too-long": (_set("caption", "x" * 1001),
                         "expect_column_value_lengths_to_be_between(caption, min_value=1, max_value=1000)"),
    "empty-caption": (_set("caption", ""), "expect_column_value_lengths_to_be_between(caption"),
    "null-caption-with-status-ok": (_set("caption", None), "expect_column_values_to_not_be_null(caption) "
                                                           "where caption_status IN (ok, truncated)"),
    "caption-with-status-missing": (_set("caption", "stray text", row=5), "expect_column_values_to_be_null(caption) "
                                                                          "where caption_status NOT_IN"),
}


@pytest.mark.parametrize("mutate, expected", list(BROKEN.values()), ids=list(BROKEN))
def test_each_broken_manifest_fails_its_expectation(tmp_path, mutate, expected):
    frame = manifest()
    mutate(frame)

    result = gate(frame, tmp_path)

    assert not result.success
    assert len(result.failed) == 1, result.failed
    assert result.failed[0].startswith(expected), result.failed[0]
    assert (tmp_path / "ds.quality" / "index.html").is_file()  # docs are written when failing too


def test_a_too_long_caption_is_shown_short_with_its_length(tmp_path):
    frame = manifest()
    frame.loc[0, "caption"] = "x" * 1500
    [line] = gate(frame, tmp_path).failed
    assert line.endswith("e.g. ['xxxxxxxxxxxx…' (1500 chars)]")


def test_an_empty_manifest_fails_the_row_count(tmp_path):
    result = gate(manifest().iloc[:0], tmp_path)
    assert result.failed == ["expect_table_row_count_to_be_between(min_value=1): observed 0"]


def test_the_quarantine_share_has_a_ceiling(tmp_path):
    frame = manifest()  # 6 rows
    assert gate(frame, tmp_path, quarantine_rows=2, max_quarantine_share=0.25).success  # 2 of 8: at the ceiling

    result = gate(frame, tmp_path, quarantine_rows=2, max_quarantine_share=0.2)

    assert result.failed == ["expect_column_max_to_be_between(quarantine_share, max_value=0.2): observed 0.25"]
    assert result.to_dict()["dataset"] == {"rows": 6, "quarantine_rows": 2, "quarantine_share": 0.25}


def test_raise_for_failure_names_every_failed_expectation_and_the_docs(tmp_path):
    frame = manifest()
    frame.loc[0, "width"] = 0
    frame.loc[1, "format"] = "XCF"
    result = gate(frame, tmp_path, quarantine_rows=6)

    with pytest.raises(QualityGateError) as raised:
        result.raise_for_failure()

    message = str(raised.value)
    page = next((tmp_path / "ds.quality" / "validations").rglob("ingest-manifest.html")).read_text()
    assert "XCF" in page  # the offending value is in the Data Docs too
    assert len(result.failed) == 3
    for line in result.failed:
        assert line in message
    assert "expect_column_max_to_be_between(quarantine_share" in message
    assert str(tmp_path / "ds.quality" / "gate.html") in message
    summary = (tmp_path / "ds.quality" / "gate.html").read_text()
    assert "failed" in summary and summary.count("✗") == 6  # under "Not met", and again in its suite
    assert "6 rows and 6 quarantined (50.0% of the input)" in message
    assert "\n" not in message
    assert isinstance(raised.value, PhotogenicError) and raised.value.exit_code == 3
    # a runner that only has the step's metadata can raise the same error
    restored = GateResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert restored == result and restored.message() == message


def test_params_come_as_a_model_or_a_dict_and_are_checked(tmp_path):
    frame = manifest()
    frame.loc[0, "caption"] = "x" * 50
    params = IngestGateParams(max_caption_chars=40)
    result = run_gate("ingest", frame, quarantine_rows=0, params=params, docs_dir=None)
    assert not result.success and result.docs_index is None
    assert not (tmp_path / "ds.quality").exists()

    with pytest.raises(ValidationError, match="max_quarantine_shar"):
        run_gate("ingest", frame, quarantine_rows=0, params={"max_quarantine_shar": 0.1}, docs_dir=None)


def test_an_unknown_kind_names_the_known_ones():
    assert "ingest" in known_kinds()
    with pytest.raises(ValueError, match=r"no quality gate suite for dataset kind 'no_such_kind'.*kinds are: .*ingest"):
        run_gate("no_such_kind", manifest(), quarantine_rows=0, params={}, docs_dir=None)


def test_a_missing_column_is_reported_not_raised(tmp_path):
    result = gate(manifest().drop(columns=["height"]), tmp_path)
    assert not result.success
    assert any(line.startswith("expect_column_values_to_not_be_null(height): could not be evaluated:")
               and "height" in line.split(":", 1)[1] for line in result.failed), result.failed


def test_docs_show_the_latest_run_only(tmp_path):
    gate(manifest(), tmp_path)
    broken = manifest()
    broken.loc[0, "width"] = 0
    gate(broken, tmp_path)

    runs = [p for p in (tmp_path / "ds.quality" / "validations").rglob("*") if p.is_dir() and p.name.endswith("Z")]
    assert len(runs) == 2  # one timestamp folder per suite, from the second run only
    assert len(list((tmp_path / "ds.quality" / "validations").rglob("*.html"))) == 2


def test_docs_for_a_remote_dataset_are_uploaded_with_fsspec(tmp_path):
    import fsspec

    result = run_gate("ingest", manifest(), quarantine_rows=0, params={}, docs_dir="memory://bucket/ds.quality")

    fs = fsspec.filesystem("memory")
    assert result.docs_index == "memory://bucket/ds.quality/gate.html"
    assert fs.isfile("/bucket/ds.quality/index.html") and fs.isfile("/bucket/ds.quality/gate.html")
    assert fs.glob("/bucket/ds.quality/validations/**/*.html")
    assert set(tmp_path.iterdir()) == {tmp_path / "home"}
