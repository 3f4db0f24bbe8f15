"""The ZenML step cache: a rerun with nothing changed skips every step and still leaves every
dataset on disk; a changed config or source re-runs exactly the steps it feeds."""

import shutil

import pytest

from photogenic.versioning.dvc import read_lock
from tests.conftest import image_bytes, wds_members, write_tar
from tests.runners.test_data_curation_pipeline import _config, _small_pool


def _add_to_ground_truth(project, key):
    """The SIMULATED curation annotators judge a new sample from the pool's ground truth."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = project / "data/raw/sample-pool/ground_truth.parquet"
    rows = pq.read_table(path).to_pylist()
    rows.append({**rows[0], "key": key, "scene_caption": "a new photo"})
    pq.write_table(pa.Table.from_pylist(rows), path)


def _statuses(name="data_curation"):
    from zenml.client import Client

    run = Client().get_pipeline(name).last_run
    return {step: step_run.status.value for step, step_run in run.steps.items()}


@pytest.mark.slow
def test_rerun_is_cached_restores_missing_datasets_and_invalidates_on_change(dvc_project, monkeypatch):
    from photogenic.runtime import prepare_environment

    _small_pool(dvc_project)
    monkeypatch.chdir(dvc_project)
    prepare_environment(dvc_project)
    from pipelines.run import run_pipeline

    config = _config(dvc_project)
    run_pipeline("data_curation", config, progress=False)
    assert set(_statuses().values()) == {"completed"}
    md5s = {stage: read_lock(dvc_project)["stages"][stage]["outs"][0]["md5"] for stage in ("ingest", "auto_filter")}

    summary = run_pipeline("data_curation", config, progress=False)
    statuses = _statuses()
    assert set(statuses.values()) == {"cached"}, statuses
    assert f"{len(statuses)} of {len(statuses)} steps cached" in summary

    # the datasets are gone: the cached run restores them from DVC, as the rerun would have made them
    manifest = (dvc_project / "data/datasets/candidates/manifest.parquet").read_bytes()
    shutil.rmtree(dvc_project / "data" / "datasets")
    summary = run_pipeline("data_curation", config, progress=False)
    assert set(_statuses().values()) == {"cached"}
    assert "dataset candidates restored from DVC" in summary
    assert (dvc_project / "data/datasets/candidates/manifest.parquet").read_bytes() == manifest
    assert (dvc_project / "data/datasets/ingested/manifest.parquet").exists()

    # a filter setting changed: ingest and its gate stay cached, the filter and what follows re-run
    run_pipeline("data_curation", _config(dvc_project, "filter.dedup.enabled=false"), progress=False)
    statuses = _statuses()
    assert statuses["ingest"] == "cached"
    assert statuses["auto_filter"] == "completed" and statuses["version_auto_filter"] == "completed"
    assert read_lock(dvc_project)["stages"]["auto_filter"]["outs"][0]["md5"] != md5s["auto_filter"]

    # back to the first config: cached again, and the first candidates (another version than the
    # folder now holds) come back from the DVC cache, dvc.lock following
    run_pipeline("data_curation", config, progress=False)
    assert set(_statuses().values()) == {"cached"}
    assert (dvc_project / "data/datasets/candidates/manifest.parquet").read_bytes() == manifest
    assert read_lock(dvc_project)["stages"]["auto_filter"]["outs"][0]["md5"] == md5s["auto_filter"]

    # a source shard changed (same config): its md5 is in ingest's cache key, so ingest re-runs
    # (and curation, whose simulated annotators' ground truth changed with it)
    write_tar(dvc_project / "data/raw/sample-pool/00001.tar",
              wds_members("000000100", image_bytes((200, 160), seed=99), "a new photo"))
    _add_to_ground_truth(dvc_project, "000000100")
    run_pipeline("data_curation", config, progress=False)
    statuses = _statuses()
    assert statuses["ingest"] == "completed" and statuses["auto_filter"] == "completed"
    assert read_lock(dvc_project)["stages"]["ingest"]["outs"][0]["md5"] != md5s["ingest"]
