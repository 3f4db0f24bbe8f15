"""Lineage and scheduled retraining, joined over a registered model carrying the lineage tags,
the versions log, dvc.lock and the manifests (old versions read from the DVC cache)."""

import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from photogenic.errors import ConfigError
from photogenic.lineage import tags as T
from photogenic.lineage.query import model_lineage, sample_lineage
from photogenic.lineage.retrain import retrain_decision
from photogenic.stages.registry import STAGES
from photogenic.stages.runner import check_output, run_stage
from photogenic.versioning.dvc import write_params
from photogenic.versioning.record import version_output
from tests.conftest import image_bytes, wds_members, write_tar
from tests.runners.test_data_curation_pipeline import _config, _small_pool


def _run_recipe(project, config):
    """The data chain's stages up to curation (the sources and the curation inputs are both in the
    lineage; the later stages version their datasets the same way) one after the other, each gated
    and versioned, as `photogenic step` + DVC do."""

    write_params(project, config.resolved())
    refs = []
    for name in ("ingest", "auto_filter", "curation"):
        assert STAGES[name].dvc_stage
        output = run_stage(name, config, progress=False)
        check_output(name, output.ref, config)
        refs.append(version_output(name, output.ref, config, run={"runner": "zenml", "id": "run-1", "name": "emu-1"}))
    return refs


def _register(refs, config, alias="champion"):
    from mlflow import MlflowClient

    client = MlflowClient()
    client.create_registered_model(T.DEFAULT_MODEL)
    tags = T.model_version_tags(config, refs, {"runner": "zenml", "id": "run-1", "name": "emu-1"},
                                inputs=T.input_md5s(config, STAGES), git_commit="abc123")
    version = client.create_model_version(T.DEFAULT_MODEL, source="models/emu-1", tags=tags)
    client.set_registered_model_alias(T.DEFAULT_MODEL, alias, version.version)
    return version


@pytest.fixture
def recipe(dvc_project, monkeypatch):
    # MLflow 3.17 refuses the autouse fixture's file store unless told it is wanted
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    _small_pool(dvc_project)
    monkeypatch.chdir(dvc_project)
    config = _config(dvc_project)
    refs = _run_recipe(dvc_project, config)
    _register(refs, config)
    return dvc_project, config, {ref.name: ref for ref in refs}


def test_model_lineage_names_every_dataset_version_run_and_source(recipe):
    project, config, refs = recipe
    result = model_lineage(f"{T.DEFAULT_MODEL}@champion", config.data.root)
    assert result["model"]["version"] == "1" and result["model"]["aliases"] == ["champion"]
    assert {name: d["dvc_md5"] for name, d in result["datasets"].items()} == {n: r.dvc_md5 for n, r in refs.items()}
    assert result["datasets"]["ingested"]["source_shards"] == ["raw/sample-pool/00000.tar"]
    assert result["datasets"]["candidates"]["made_by"][0]["run"]["id"] == "run-1"
    assert all(d["current_in_dvc_lock"] for d in result["datasets"].values())
    # the sources, and the ground truth the SIMULATED annotators judged from (no people's exports)
    assert set(result["inputs"]) == {"ingest.source0", "curation.simulate.ground_truth"}
    assert result["git_commit"] == "abc123"
    assert model_lineage(f"{T.DEFAULT_MODEL}@1", config.data.root)["model"]["version"] == "1"
    with pytest.raises(ConfigError, match="No model version 'photogenic-t2i@nope'"):
        model_lineage(f"{T.DEFAULT_MODEL}@nope", config.data.root)

    with pytest.raises(ValueError, match="not versioned"):  # tags never lose a dataset's version
        T.model_version_tags(config, [refs["ingested"].with_dvc_md5(None)], {}, inputs={})

    done = subprocess.run([sys.executable, "-m", "photogenic.cli", "lineage", "model", f"{T.DEFAULT_MODEL}@champion"],
                          cwd=project, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert refs["candidates"].dvc_md5 in done.stdout and "source shards: raw/sample-pool/00000.tar" in done.stdout


def test_sample_lineage_finds_datasets_and_models_including_old_versions(recipe):
    project, config, refs = recipe
    candidates = pq.read_table(project / "data/datasets/candidates/manifest.parquet").column("sample_id").to_pylist()
    ingested = pq.read_table(project / "data/datasets/ingested/manifest.parquet").column("sample_id").to_pylist()
    kept = candidates[0]
    result = sample_lineage(kept, config.data.root)
    assert {(d["dataset"], d["dvc_md5"]) for d in result["datasets"]} == {(n, r.dvc_md5) for n, r in refs.items()}
    # every picture of the small pool is photogenic: the sample went into every dataset made
    assert result["models"] == [{"name": T.DEFAULT_MODEL, "version": "1", "aliases": ["champion"],
                                 "via": ["candidates", "curated", "ingested"]}]

    # a new candidates version without the sample replaces the folder; the old version, read from
    # the DVC cache, still shows where the sample went
    from photogenic.stages.runner import run_stage
    from photogenic.versioning.record import version_output

    stricter = config.model_copy(deep=True)
    stricter.filter.size.min_short_side = 10_000  # nothing survives...
    stricter.filter.size.enabled = True
    output = run_stage("auto_filter", stricter, progress=False)
    version_output("auto_filter", output.ref, stricter, run={"runner": "dvc", "id": "", "name": ""})
    result = sample_lineage(kept, config.data.root)
    old = [d for d in result["datasets"] if d["dataset"] == "candidates"]
    assert [d["dvc_md5"] for d in old] == [refs["candidates"].dvc_md5] and not old[0]["current_in_dvc_lock"]
    assert result["models"][0]["via"] == ["candidates", "curated", "ingested"]

    unknown = sample_lineage("0" * 64, config.data.root)
    assert unknown["datasets"] == [] and unknown["models"] == []
    assert set(ingested) >= set(candidates)


def test_retrain_only_when_sources_changed(recipe):
    project, config, _ = recipe
    decision = retrain_decision(config, STAGES, T.DEFAULT_MODEL, "champion")
    assert not decision.changed and "Not retraining" in decision.message() and "v1" in decision.message()
    # no version under the alias yet: compared with the last version the recipe trained
    fallback = retrain_decision(config, STAGES, T.DEFAULT_MODEL, "nobody")
    assert not fallback.changed and "the last model trained (photogenic-t2i v1" in fallback.message()
    assert retrain_decision(config, STAGES, "never-trained", "champion").changed

    cli = [sys.executable, "-m", "photogenic.cli", "retrain", "--config", "configs/default.yaml",
           "--set", "ingest.workers=0", "--set", "ingest.gate.max_quarantine_share=0.2",
           "--set", "filter.technical.enabled=false"]
    done = subprocess.run(cli, cwd=project, capture_output=True, text=True)
    assert done.returncode == 0 and "Nothing changed since the champion (photogenic-t2i v1)" in done.stdout, done.stderr

    write_tar(project / "data/raw/sample-pool/00001.tar", wds_members("000000100", image_bytes(seed=7), "new"))
    decision = retrain_decision(config, STAGES, T.DEFAULT_MODEL, "champion")
    assert decision.changed and decision.reasons[0].startswith("ingest.source0 is ")

