"""Ingest on the embedded sample pool: what it quarantines, collapses and flags must be exactly
what the generator planted (the ground truth is read here, never by the pipeline)."""

import pyarrow.parquet as pq
import pytest

from photogenic.dataset.store import Dataset
from photogenic.samplepool import generate_sample_pool
from photogenic.stages.ingest import ingest
from photogenic.stages.runner import check_output
from tests.conftest import config_for


def _key(source: str) -> str:
    return source.rsplit("#", 1)[1]


@pytest.mark.parametrize("n", [pytest.param(400, id="400"), pytest.param(4000, id="4000", marks=pytest.mark.slow)])
def test_ingest_finds_exactly_the_planted_file_and_caption_defects(tmp_path, n):
    root = tmp_path / "data"
    generate_sample_pool(root / "raw" / "pool", n=n, seed=7, progress=False)
    truth = {r["key"]: r for r in pq.read_table(root / "raw" / "pool" / "ground_truth.parquet").to_pylist()}
    planted = lambda defect: {k for k, r in truth.items() if defect in r["defects"]}  # noqa: E731

    config = config_for(root, "ingest.sources.0.uri=raw/pool/*.tar", "ingest.workers=2")
    result = ingest(config, progress=False)
    dataset = Dataset(result.ref.path)
    rows = dataset.read_manifest().to_pylist()
    quarantine = dataset.read_quarantine().to_pylist()

    assert {_key(q["source"]) for q in quarantine} == planted("corrupt") | planted("truncated")
    assert {_key(q["source"]) for q in quarantine if q["reason_code"] == "truncated"} == planted("truncated")
    # each exact re-upload collapsed into its original's row, whichever came first in the shards
    copies = set()
    for row in rows:
        keys = [_key(s) for s in row["sources"]]
        originals = [k for k in keys if "exact_duplicate" not in truth[k]["defects"]]
        assert len(originals) == 1, keys
        copies |= set(keys) - set(originals)
        assert all(truth[k]["near_duplicate_of"] == originals[0] for k in set(keys) - set(originals))
    assert copies == planted("exact_duplicate")
    assert result.ref.rows == n - len(quarantine) - len(copies)

    # a row keeps the caption of its first source
    status = {_key(row["source"]): row["caption_status"] for row in rows}
    assert {k for k, s in status.items() if s == "not_utf8"} == planted("non_utf8_caption") & set(status)
    assert {k for k, s in status.items() if s == "empty"} == planted("empty_caption") & set(status)
    for row in rows:
        original = truth[_key(row["source"])]
        assert (row["width"], row["height"]) == (original["width"], original["height"])
        assert row["meta_likes"] >= 0 and row["url"].startswith("https://")
    assert check_output("ingest", result.ref, config).success
