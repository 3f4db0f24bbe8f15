"""The whole recipe as one ZenML pipeline (`emu`): the data chain, then pretrain → quality_tune →
evaluate → promote on the datasets the chain versioned; a rerun with nothing changed is cached
throughout and leaves the models on disk; the registered models carry the lineage of every
dataset and annotation file."""

import shutil

import pytest

from tests.runners.test_data_curation_pipeline import _config, _small_pool
from tests.support.training_fixtures import tiny_recipe_overrides


def _statuses():
    from zenml.client import Client

    run = Client().get_pipeline("emu").last_run
    return {step: step_run.status.value for step, step_run in run.steps.items()}


@pytest.mark.slow  # the data chain and two (tiny) trainings, three times
def test_emu_pipeline_runs_the_recipe_caches_it_and_records_lineage(dvc_project, monkeypatch):
    from photogenic.runtime import prepare_environment

    _small_pool(dvc_project)
    monkeypatch.chdir(dvc_project)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")  # ZenML's tracker decides where the runs go
    prepare_environment(dvc_project)
    import mlflow
    from zenml.client import Client

    from photogenic.lineage.query import model_lineage
    from pipelines.run import run_pipeline

    config = _config(dvc_project, *tiny_recipe_overrides(dvc_project / "data", steps=2))
    summary = run_pipeline("emu", config, progress=False)
    statuses = _statuses()
    assert set(statuses.values()) == {"completed"}, statuses
    assert {"ingest", "package", "pretrain", "quality_tune", "evaluate", "promote"} <= set(statuses)
    assert "model quality_tuned: photogenic-t2i version 2" in summary
    assert "visual_appeal (technical_quality): candidate vs baseline win rate" in summary
    assert "promotion: " in summary

    # the quality-tuned version carries the DVC md5 of every dataset it was made from, and the
    # md5s of the source shard and of the annotators' ground truth
    mlflow.set_tracking_uri(Client().active_stack.experiment_tracker.get_tracking_uri())
    lineage = model_lineage("photogenic-t2i@2", "data")
    assert {"training_set", "upsampled", "captioned", "curated", "candidates", "ingested"} <= set(lineage["datasets"])
    tags = mlflow.MlflowClient().get_model_version("photogenic-t2i", "2").tags
    assert tags["photogenic.dvc_md5.training_set"].endswith(".dir")
    assert {"photogenic.input_md5.ingest.source0", "photogenic.input_md5.curation.simulate.ground_truth"} <= set(tags)
    assert tags["photogenic.run.id"] == str(Client().get_pipeline("emu").last_run.id)

    # nothing changed: every step cached
    summary = run_pipeline("emu", config, progress=False)
    statuses = _statuses()
    assert set(statuses.values()) == {"cached"}, statuses
    assert f"{len(statuses)} of {len(statuses)} steps cached" in summary

    # the model folder is gone: the cached run brings it back from the MLflow run that logged it
    tuned = dvc_project / "data" / "models" / "quality_tuned"
    weights = sorted(p.relative_to(tuned) for p in tuned.rglob("*") if p.is_file())
    shutil.rmtree(tuned)
    summary = run_pipeline("emu", config, progress=False)
    assert set(_statuses().values()) == {"cached"}
    assert "model quality_tuned restored from its MLflow run" in summary
    assert sorted(p.relative_to(tuned) for p in tuned.rglob("*") if p.is_file()) == weights

    # a quality-tuning setting changed: the data chain and pretraining stay cached, the rest re-runs
    run_pipeline("emu", _config(dvc_project, *tiny_recipe_overrides(dvc_project / "data", steps=2),
                                "training.quality_tune.learning_rate=0.0003"), progress=False)
    statuses = _statuses()
    assert {statuses[s] for s in ("ingest", "auto_filter", "curation", "package", "pretrain")} == {"cached"}, statuses
    assert {statuses[s] for s in ("quality_tune", "evaluate", "promote")} == {"completed"}, statuses
