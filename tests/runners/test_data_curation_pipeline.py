"""The ingest stage end to end through its runners: ZenML (local stack in a temp home) and
`dvc repro`, in a throwaway project with its own git, DVC cache and remote."""

import json
import shutil
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from photogenic.config import load_config
from photogenic.errors import QualityGateError
from photogenic.versioning.dvc import read_lock, write_params
from tests.conftest import image_bytes, wds_members, write_tar


def _small_pool(project, n=12):
    """Hand-made shards where the sample pool lives, with a duplicate and a corrupt file."""
    members = []
    for key in range(n):
        members += wds_members(f"{key:09d}", image_bytes((200, 160), seed=key % (n - 1)), f"photo {key}", {"likes": key})
    members += wds_members(f"{n:09d}", b"\xff\xd8\xff broken", "corrupt")
    write_tar(project / "data" / "raw" / "sample-pool" / "00000.tar", members)
    # the hidden ground truth the SIMULATED curation annotators read: every picture photogenic
    truth = [{"key": f"{key:09d}", "weaknesses": [], "defects": [], "photogenic": True,
              "scene_caption": f"a photo of scene {key}", "near_duplicate_of": None} for key in range(n + 1)]
    pq.write_table(pa.Table.from_pylist(truth), project / "data" / "raw" / "sample-pool" / "ground_truth.parquet")


def _config(project, *overrides):
    # the hand-made pool is random noise, which the technical scorer rightly rejects as noisy
    return load_config(project / "configs" / "default.yaml", ["ingest.workers=0", "ingest.gate.max_quarantine_share=0.2",
                                                               "filter.technical.enabled=false",
                                                               "curation.score_column=null", *overrides])


def test_zenml_pipeline_ingests_gates_and_versions(dvc_project, monkeypatch):
    from photogenic.runtime import prepare_environment

    _small_pool(dvc_project)
    monkeypatch.chdir(dvc_project)
    prepare_environment(dvc_project)
    from zenml.client import Client

    from pipelines.run import run_pipeline

    config = _config(dvc_project)
    summary = run_pipeline("data_curation", config, progress=False)
    assert "ingested: 11 rows, 1 quarantined" in summary

    run = Client().get_pipeline("data_curation").last_run
    assert run.status.value == "completed"
    assert run.run_metadata["config"] == config.resolved()  # the resolved config is on the run
    ingest_meta = run.steps["ingest"].run_metadata
    assert ingest_meta["added"] == 11 and ingest_meta["duplicates"] == 1
    assert ingest_meta["quarantined"] == 1
    gate_meta = run.steps["gate_ingest"].run_metadata["quality_gate"]
    assert gate_meta["success"] is True
    md5 = run.steps["version_ingest"].run_metadata["dvc_md5"]
    ref = run.steps["version_ingest"].outputs["versioned_dataset"][0].load()
    assert ref.dvc_md5 == md5 and md5.endswith(".dir")

    # dvc.lock, the remote and the versions log agree, and `dvc pull` restores the dataset
    lock = read_lock(dvc_project)
    assert lock["stages"]["ingest"]["outs"][0] == {**lock["stages"]["ingest"]["outs"][0], "path": "data/datasets/ingested", "md5": md5}
    versions = [json.loads(line) for line in (dvc_project / "data" / "versions.jsonl").read_text().splitlines()]
    ingest_version = next(v for v in versions if v["dataset"] == "ingested")
    assert ingest_version["dvc_md5"] == md5 and ingest_version["run"]["id"] == str(run.id)
    # the candidate pool came next, filtered, gated and versioned the same way
    assert run.steps["auto_filter"].run_metadata["funnel"]["input"] == 11
    assert run.steps["gate_auto_filter"].run_metadata["quality_gate"]["success"] is True
    assert lock["stages"]["auto_filter"]["outs"][0]["path"] == "data/datasets/candidates"
    funnel_html = run.steps["auto_filter"].outputs["funnel_report"][0].load()
    assert "<svg" in funnel_html and (dvc_project / "data/datasets/candidates.funnel.html").read_text() == funnel_html
    assert yaml.safe_load((dvc_project / "params.yaml").read_text()) == config.resolved()
    # then curation (SIMULATED annotators) and captions, gated and versioned the same way
    assert run.steps["curation"].run_metadata["simulated_annotators"] is True
    assert run.steps["gate_curation"].run_metadata["quality_gate"]["success"] is True
    assert run.steps["gate_caption"].run_metadata["quality_gate"]["success"] is True
    assert {o["path"] for o in lock["stages"]["curation"]["outs"]} == {"data/datasets/curated", "data/curation"}
    assert lock["stages"]["caption"]["outs"][0]["path"] == "data/datasets/captioned"

    manifest = (dvc_project / "data/datasets/ingested/manifest.parquet").read_bytes()
    shutil.rmtree(dvc_project / "data" / "datasets" / "ingested")
    shutil.rmtree(dvc_project / ".dvc" / "cache")
    subprocess.run([sys.executable, "-m", "dvc", "pull", "ingest"], cwd=dvc_project, check=True, capture_output=True)
    assert (dvc_project / "data/datasets/ingested/manifest.parquet").read_bytes() == manifest

    listing = subprocess.run([sys.executable, "-m", "photogenic.cli", "data", "ls"], cwd=dvc_project,
                             capture_output=True, text=True, check=True).stdout
    assert md5 in listing and "zenml" in listing and str(run.id) in listing


def test_zenml_pipeline_stops_at_a_failed_gate(dvc_project, monkeypatch):
    from photogenic.runtime import prepare_environment

    _small_pool(dvc_project)
    monkeypatch.chdir(dvc_project)
    prepare_environment(dvc_project)
    from zenml.client import Client

    from pipelines.run import run_pipeline

    # a ceiling of 0 quarantined rows: the corrupt file must fail the gate
    with pytest.raises(QualityGateError, match="quarantine_share.*step gate_ingest of run"):
        run_pipeline("data_curation", _config(dvc_project, "ingest.gate.max_quarantine_share=0.0"), progress=False)
    run = Client().get_pipeline("data_curation").last_run
    assert run.status.value == "failed"
    assert run.steps["gate_ingest"].run_metadata["quality_gate"]["success"] is False
    assert "version_ingest" not in run.steps or run.steps["version_ingest"].status.value != "completed"
    assert "ingest" not in read_lock(dvc_project).get("stages", {})  # nothing was versioned


def test_zenml_step_failing_on_user_input_raises_the_user_error(dvc_project, monkeypatch):
    from photogenic.errors import DataError
    from photogenic.runtime import prepare_environment

    monkeypatch.chdir(dvc_project)
    prepare_environment(dvc_project)
    from pipelines.run import run_pipeline

    with pytest.raises(DataError, match="matches no files.*step ingest of run data_curation-"):
        run_pipeline("data_curation", _config(dvc_project, "ingest.sources.0.uri=raw/nothing-*.tar"), progress=False)


def test_dvc_repro_and_zenml_make_the_same_dataset(dvc_project, monkeypatch):
    """`dvc repro` runs sample_pool and ingest as plain processes; the ZenML pipeline then
    re-makes the ingested dataset from scratch, and DVC must see the very same md5."""
    config = _config(dvc_project, "sample_pool.n=80", "sample_pool.shard_size=40", "ingest.workers=1",
                     "filter.technical.enabled=true")
    write_params(dvc_project, config.resolved())
    dvc = lambda *args: subprocess.run([sys.executable, "-m", "dvc", *args], cwd=dvc_project,  # noqa: E731
                                       capture_output=True, text=True)
    # the data stages (package and its upstream); the training stages after them are tests/test_training.py's
    done = dvc("repro", "package")
    assert done.returncode == 0, done.stderr + done.stdout
    stages = read_lock(dvc_project)["stages"]
    assert set(stages) == {"sample_pool", "ingest", "auto_filter", "curation", "caption", "upsample", "package"}
    out = stages["ingest"]["outs"][0]
    candidates_md5 = stages["auto_filter"]["outs"][0]["md5"]
    curated_md5 = {o["path"]: o["md5"] for o in stages["curation"]["outs"]}
    captioned_md5 = stages["caption"]["outs"][0]["md5"]
    upsampled_md5 = stages["upsample"]["outs"][0]["md5"]
    training_set_md5 = stages["package"]["outs"][0]["md5"]
    assert out["path"] == "data/datasets/ingested"
    card = json.loads((dvc_project / "data/datasets/ingested/dataset.json").read_text())
    assert card["rows"] + card["quarantined"] + card["duplicates_collapsed"] == 80
    assert "didn't change" in dvc("repro", "package").stdout  # nothing changed: nothing runs

    shutil.rmtree(dvc_project / "data" / "datasets")
    monkeypatch.chdir(dvc_project)
    from photogenic.runtime import prepare_environment

    prepare_environment(dvc_project)
    from pipelines.run import run_pipeline

    run_pipeline("data_curation", config, progress=False)
    stages = read_lock(dvc_project)["stages"]
    assert stages["ingest"]["outs"][0]["md5"] == out["md5"]
    assert stages["auto_filter"]["outs"][0]["md5"] == candidates_md5
    assert {o["path"]: o["md5"] for o in stages["curation"]["outs"]} == curated_md5
    assert stages["caption"]["outs"][0]["md5"] == captioned_md5
    assert stages["upsample"]["outs"][0]["md5"] == upsampled_md5
    assert stages["package"]["outs"][0]["md5"] == training_set_md5
