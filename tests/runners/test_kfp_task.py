"""The check task at the head of the KFP pipeline: each stage's fingerprint is the content it
will read (its config sections, the md5s of its files from outside the datasets), so KFP's cache
serves an unchanged stage and reruns a changed one; with only_if_changed it skips the run when
nothing changed since the champion."""

import json

import pytest

from photogenic.errors import ConfigError, DataError
from photogenic.kfp.task import check_inputs, run_task
from tests.conftest import image_bytes, wds_members, write_tar


def _values(tmp_path, *overrides):
    return {"config_file": "", "source_uris": [str(tmp_path / "shards" / "*.tar")], "dataset_version": "",
            "model_checkpoint": "", "steps": 0, "seed": -1,
            "overrides": [f"data.root={tmp_path / 'data'}", "curation.simulate.enabled=false", *overrides],
            "dvc_remote": "", "only_if_changed": False, "champion": "photogenic-t2i@champion"}


def _shard(tmp_path, n):
    write_tar(tmp_path / "shards" / "00000.tar",
              [m for k in range(n) for m in wds_members(f"{k:09d}", image_bytes(seed=k), f"photo {k}")])


def test_fingerprints_follow_each_stage_s_own_inputs(tmp_path):
    _shard(tmp_path, 3)
    stages = ["ingest", "auto_filter", "curation"]
    first = check_inputs(_values(tmp_path), stages)
    assert first.changed and first.fingerprints == check_inputs(_values(tmp_path), stages).fingerprints
    ingest = json.loads(first.fingerprints["ingest"])
    assert set(ingest["inputs"]) == {"source0"} and len(ingest["md5"]) == 32
    # a filter setting changes the filter's fingerprint only
    tuned = check_inputs(_values(tmp_path, "filter.size.min_short_side=64"), stages).fingerprints
    assert tuned["ingest"] == first.fingerprints["ingest"] and tuned["auto_filter"] != first.fingerprints["auto_filter"]
    # a changed shard changes ingest's
    _shard(tmp_path, 4)
    assert check_inputs(_values(tmp_path), stages).fingerprints["ingest"] != first.fingerprints["ingest"]


def test_a_stage_refuses_inputs_changed_since_the_run_started(tmp_path):
    _shard(tmp_path, 3)
    recorded = check_inputs(_values(tmp_path, "dvc.enabled=false"), ["ingest"]).fingerprints["ingest"]
    _shard(tmp_path, 4)
    with pytest.raises(DataError, match="source0 changed after this run started"):
        run_task("ingest", _values(tmp_path, "dvc.enabled=false"), [], expected=recorded)


def test_only_if_changed_asks_the_registry(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    _shard(tmp_path, 3)
    values = {**_values(tmp_path), "only_if_changed": True}
    decision = check_inputs(values, ["ingest"])
    # no model was ever trained: there is nothing to compare with, so the stages run, and say why
    assert decision.changed and "no photogenic-t2i@champion model version" in decision.reason
    with pytest.raises(ConfigError, match="NAME@ALIAS"):
        check_inputs({**values, "champion": "photogenic-t2i"}, ["ingest"])
