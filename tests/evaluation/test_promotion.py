"""The promotion gate on an MLflow registry (the tests' file store): refuses a model that did not
win clearly, promotes a winner, and records the decision on the model version."""

from __future__ import annotations

import pytest

from photogenic.config import load_config
from photogenic.errors import ConfigError
from photogenic.evaluation.promotion import TAG, promote

NAME = "photogenic-t2i"


@pytest.fixture(autouse=True)
def mlflow_file_store(monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")


@pytest.fixture
def client(tmp_path):
    from mlflow import MlflowClient

    client = MlflowClient()
    client.create_registered_model(NAME)
    for i in (1, 2, 3):
        (tmp_path / f"v{i}").mkdir()
        client.create_model_version(NAME, source=str(tmp_path / f"v{i}"))
    return client


def _results(wins: int, ties: int, losses: int, ci_low: float, candidate: str = "2", opponent: str | None = "1"):
    n = wins + ties + losses
    rate = (wins + ties / 2) / n
    models = {"candidate": {"spec": f"models:/{NAME}/{candidate}", "registered_name": NAME, "version": candidate},
              "baseline": {"spec": f"models:/{NAME}/{opponent}" if opponent else "pretrained/",
                           "registered_name": NAME if opponent else None, "version": opponent}}
    row = {"judge": "technical_quality", "criterion": "visual_appeal", "category": "all", "wins": wins, "ties": ties,
           "losses": losses, "n": n, "win_rate": rate, "ci_low": ci_low, "ci_high": min(1.0, rate + 0.1),
           "p_value": 0.01}
    return {"model_a": "candidate", "model_b": "baseline", "models": models, "win_rates": [row],
            "judges": [{"name": "technical_quality"}], "mlflow_run_id": "run123"}


def _settings(*overrides: str):
    return load_config(None, list(overrides)).evaluate.promotion


def test_first_champion_from_a_win_over_the_pretrained_model(client):
    decision = promote(_results(80, 5, 15, ci_low=0.74, opponent=None), _settings())
    assert decision.promoted and decision.previous_champion is None
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == "2"
    tags = client.get_model_version(NAME, "2").tags
    assert tags[TAG + "decision"] == "promoted" and float(tags[TAG + "win_rate"]) == pytest.approx(0.825)
    assert tags[TAG + "ci_low"] == "0.74" and tags[TAG + "evaluation_run"] == "run123"


def test_refuses_a_model_that_did_not_win(client):
    client.set_registered_model_alias(NAME, "champion", "1")
    # a loss
    decision = promote(_results(30, 10, 60, ci_low=0.27), _settings())
    assert not decision.promoted and "below 0.550" in decision.reason
    # a win too narrow: rate above 0.5 + margin but the interval reaches below parity
    narrow = promote(_results(60, 0, 40, ci_low=0.49), _settings())
    assert not narrow.promoted and "lower bound 0.490 not above 0.500" in narrow.reason
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == "1"
    tags = client.get_model_version(NAME, "2").tags
    assert tags[TAG + "decision"] == "refused" and tags[TAG + "previous_champion"] == "1"


def test_promotes_a_clear_winner_over_the_champion(client):
    client.set_registered_model_alias(NAME, "champion", "1")
    decision = promote(_results(85, 5, 10, ci_low=0.81), _settings("evaluate.promotion.margin=0.2"))
    assert decision.promoted and decision.previous_champion == "1"
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == "2"
    # a margin the same numbers do not reach refuses
    client.set_registered_model_alias(NAME, "champion", "1")
    strict = _settings("evaluate.promotion.margin=0.4")
    assert not promote(_results(85, 5, 10, ci_low=0.81, candidate="3"), strict).promoted


def test_must_be_evaluated_against_the_champion(client):
    client.set_registered_model_alias(NAME, "champion", "3")
    decision = promote(_results(90, 0, 10, ci_low=0.85, opponent="1"), _settings())
    assert not decision.promoted and "the current @champion is version 3" in decision.reason


def test_needs_a_registered_candidate_and_a_known_judge(client):
    results = _results(90, 0, 10, ci_low=0.85)
    results["models"]["candidate"].update(registered_name=None, version=None)
    with pytest.raises(ConfigError, match="needs the candidate's version"):
        promote(results, _settings())
    with pytest.raises(ConfigError, match="no win rate for it"):
        promote(_results(90, 0, 10, ci_low=0.85), _settings("evaluate.promotion.judge=clip_score"))


def test_evaluate_registered_models_then_promote(tmp_path):
    """models:/ URIs end to end: lineage and training curves in the report, then the stage."""
    import mlflow
    from mlflow import MlflowClient

    from photogenic.evaluation.prompts import write_prompts
    from photogenic.evaluation.world_prompts import sample_world_prompts
    from photogenic.stages.runner import run_stage
    from tests.support.tiny_models import tiny_sd_pipeline

    client = MlflowClient()
    client.create_registered_model(NAME)
    for seed, stage in ((1, "pretrain"), (2, "quality_tune")):
        with mlflow.start_run(run_name=stage) as run:
            for step in range(5):
                mlflow.log_metric("train_loss", 1.0 / (step + seed), step=step)
        folder = tiny_sd_pipeline(tmp_path / stage, seed=seed)
        client.create_model_version(NAME, source=str(folder), run_id=run.info.run_id, tags={"stage": stage})
    write_prompts(str(tmp_path / "data" / "prompts" / "p.tsv"), sample_world_prompts(3, pool_n=100))
    config = load_config(None, [f"data.root={tmp_path / 'data'}", "evaluate.prompts=prompts/p.tsv",
                                f"evaluate.candidate=models:/{NAME}/2", f"evaluate.baseline=models:/{NAME}/1",
                                "evaluate.sampling.num_inference_steps=2", "evaluate.bootstrap=200",
                                "evaluate.promotion.margin=0.0", "evaluate.promotion.min_ci_low=0.0"])
    output = run_stage("evaluate", config, progress=False)
    report = (tmp_path / "data" / "datasets" / "evaluation" / "report.html").read_text()
    assert "train_loss" in report and "<polyline" in report and "stage = quality_tune" in report
    promoted = run_stage("promote", config).stats["promotion"]
    head = output.stats["headline"]["visual_appeal"]
    # with margin 0 and no interval requirement, the gate follows the win rate alone
    assert promoted["promoted"] == (head["win_rate"] >= 0.5)
    tags = client.get_model_version(NAME, "2").tags
    assert tags[TAG + "decision"] == ("promoted" if promoted["promoted"] else "refused")
    assert tags[TAG + "evaluation_run"] == output.stats["mlflow_run_id"]


def test_stage_declarations_and_step_resources():
    from photogenic.stages.registry import get_stage
    from steps.evaluate import evaluate_with_resources

    config = load_config(None, ["evaluate.gpus=1"])
    evaluate, gate = get_stage("evaluate"), get_stage("promote")
    assert evaluate.dataset_names(config, evaluate.outputs) == ["evaluation"]
    assert gate.dataset_names(config, gate.inputs) == ["evaluation"]
    assert evaluate_with_resources(config).configuration.settings["resources"].gpu_count == 1
    assert evaluate_with_resources(load_config(None)).configuration.settings["resources"].gpu_count is None
