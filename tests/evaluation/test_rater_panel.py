"""The rater panel: its labels come from the ground truth, it trains once and is read from its
cache after, each member votes and the majority decides a pair, and an evaluation with it
stores every member's score and the panel's card; text faithfulness has Emu's four outcomes."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from photogenic.config import load_config
from photogenic.curation.simulate import truth_of
from photogenic.evaluation.comparisons import majority, pair_outcomes
from photogenic.evaluation.evaluate import headline, run_evaluation
from photogenic.evaluation.judges.registry import build_judges, member_column
from photogenic.evaluation.judges.sample_world import fit as fitting
from photogenic.evaluation.judges.sample_world import learned, rater_panel, text_match
from photogenic.evaluation.prompts import Prompt
from photogenic.evaluation.winrate import LOSS, TIE, WIN
from photogenic.samplepool.sample import PoolContext, build_sample
from photogenic.samplepool.spec import SamplePoolSpec
from tests.evaluation.test_evaluate import _config, models  # noqa: F401 - the module's tiny models

TINY = rater_panel.PanelSettings(members=3, train_pool=60, held_out_pool=40, epochs=1, resolution=16)
TINY_OVERRIDES = ["evaluate.judges.panel.members=3", "evaluate.judges.panel.train_pool=60",
                  "evaluate.judges.panel.held_out_pool=40", "evaluate.judges.panel.epochs=1",
                  "evaluate.judges.panel.resolution=16", "evaluate.judges.workers=0"]


def test_labels_are_the_specialists_verdict_and_leave_out_what_a_square_picture_cannot_show():
    n, seed = 120, 3
    pool = rater_panel.labelled_pool(n, seed, 16)
    context = PoolContext.create(n=n, seed=seed, shard_size=n, spec=SamplePoolSpec())
    records = [build_sample(context, i).truth for i in range(n)]
    by_key = {r["key"]: r for r in records}
    kept = [r for r in records
            if not set(r["defects"]) & {"corrupt", "truncated", "too_small", "extreme_aspect"}]
    assert len(kept) < n and pool.images.shape == (len(kept), 3, 16, 16)
    expected = [truth_of(r, by_key.get(r["near_duplicate_of"])) for r in kept]
    assert pool.photogenic.tolist() == [t.photogenic for t in expected]
    assert 0 < pool.photogenic.mean() < 1
    # a photogenic picture shows no problem; every other shows at least one the head learns
    assert (pool.problems[pool.photogenic].sum(axis=1) == 0).all()
    assert (pool.problems[~pool.photogenic].sum(axis=1) > 0).all()


def test_roc_auc_ranks_positives_above_negatives():
    positive = np.array([True, True, False, False])
    assert rater_panel.roc_auc(np.array([0.9, 0.8, 0.1, 0.2]), positive) == 1.0
    assert rater_panel.roc_auc(np.array([0.1, 0.2, 0.9, 0.8]), positive) == 0.0
    assert rater_panel.roc_auc(np.array([0.5, 0.5, 0.5, 0.5]), positive) == 0.5
    assert math.isnan(rater_panel.roc_auc(np.array([0.5, 0.4]), np.array([True, True])))


def test_the_panel_trains_once_and_is_read_from_its_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(learned, "_MEMORY", {})
    cache = str(tmp_path / "judges")
    first = rater_panel.Panel(TINY, cache)
    assert len(first.nets) == 3 and len(first.card["held_out"]["member_auc"]) == 3
    assert first.card["key"] == first.key and first.folder == f"{cache}/rater_panel/{first.key}"
    assert set(first.card["seconds"]) >= {"render_with_the_others", "fit_with_the_others", "measure", "total"}

    def no_training(jobs, workers, progress=True):
        raise AssertionError("trained again although the cache holds the panel")

    monkeypatch.setattr(learned, "_MEMORY", {})  # another process: only the cache on disk
    monkeypatch.setattr(fitting, "fit_all", no_training)
    again = rater_panel.Panel(TINY, cache)
    images = np.random.default_rng(0).uniform(-1, 1, size=(4, 3, 16, 16)).astype(np.float32)
    np.testing.assert_array_equal(rater_panel.member_probabilities(first.nets, images),
                                  rater_panel.member_probabilities(again.nets, images))
    assert again.card == first.card
    # other settings are another panel: another key, trained anew
    other = rater_panel.Panel(rater_panel.PanelSettings(2, 60, 40, 1, 16), cache)
    assert other.key != first.key
    with pytest.raises(AssertionError, match="trained again"):
        other.nets


def test_the_judges_that_learn_fit_together_and_the_same_on_ray_as_here(tmp_path, monkeypatch):
    """One fit for every missing network (the panel's members and the kind checker side by side),
    and weights that do not depend on whether Ray's workers or this process fitted them."""
    import torch

    from photogenic.evaluation.judges.registry import prepare_judges
    from photogenic.evaluation.judges.sample_world import kind_check

    monkeypatch.setattr(learned, "_MEMORY", {})
    monkeypatch.setattr(kind_check, "POOL_SIZE", 60)
    monkeypatch.setattr(kind_check, "EPOCHS", 1)
    settings = load_config(None, ["evaluate.judges.visual_appeal=[rater_panel]",
                                  "evaluate.judges.text_faithfulness=[text_match, subject_kind]",
                                  *TINY_OVERRIDES, "evaluate.judges.workers=2"]).evaluate.judges
    judges = build_judges(settings, str(tmp_path / "data"))
    fits = []
    real_fit_all = fitting.fit_all
    monkeypatch.setattr(fitting, "fit_all", lambda jobs, workers, progress=True: (
        fits.append([job.name for job in jobs]) or real_fit_all(jobs, workers, progress)))
    prepare_judges(judges, workers=2, progress=False)
    # the kind checker is shared by two judges and fitted once, beside the panel's three members
    assert fits == [["member-0", "member-1", "member-2", "kind-checker"]]
    assert {p.name for p in (tmp_path / "data" / "judges").iterdir()} == {"rater_panel", "subject_kind"}
    prepare_judges(judges, workers=2, progress=False)
    assert len(fits) == 1  # ready: nothing fitted again

    jobs = [rater_panel.member_job(rater_panel.labelled_pool(60, 3, 16), 1, 1), kind_check.classifier_job(60, 1, 5)]
    here, on_ray = real_fit_all(jobs, 0, progress=False), real_fit_all(jobs, 2, progress=False)
    for a, b in zip(here, on_ray):
        for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
            assert torch.equal(x, y), name


def test_the_judge_is_built_by_name_keeps_its_cache_under_the_data_root_and_hides_the_caption(tmp_path):
    settings = load_config(None, ["evaluate.judges.visual_appeal=[rater_panel]", *TINY_OVERRIDES]).evaluate.judges
    (judge,) = [j for j in build_judges(settings, str(tmp_path / "data")) if j.name == "rater_panel"]
    assert judge.panel.folder == f"{tmp_path / 'data' / 'judges' / 'rater_panel'}/{judge.panel.key}"
    (memory,) = [j for j in build_judges(settings) if j.name == "rater_panel"]
    assert memory.panel.folder is None  # no data root: nothing written
    from PIL import Image

    images = [Image.new("RGB", (40, 30), "red"), Image.new("RGB", (32, 32), "blue")]
    members = judge.score_members(images, [Prompt("a", "a red car"), Prompt("b", "a blue cat")])
    assert members.shape == (2, 3) and ((members >= 0) & (members <= 1)).all()
    swapped = judge.score_members(images, [Prompt("c", "anything else"), Prompt("d", "")])
    np.testing.assert_array_equal(members, swapped)
    assert judge.score(images, [Prompt("a", "x")] * 2) == pytest.approx(members.mean(axis=1).tolist())


def test_each_member_votes_and_the_majority_decides():
    votes = np.array([[WIN, WIN, LOSS, TIE, TIE],   # 2 A, 2 tie, 1 B: no majority
                      [WIN, WIN, WIN, LOSS, LOSS],  # 3 A
                      [LOSS, LOSS, TIE, WIN, TIE],  # 2 B, 2 tie: no majority
                      [TIE, TIE, TIE, WIN, LOSS]])  # 3 tie
    assert majority(votes).tolist() == [TIE, WIN, TIE, TIE]

    # one member far more sure of A than two are of B: the mean says A, the panel says B
    samples = pd.DataFrame({
        "model": ["a", "b"], "prompt_id": ["p", "p"], "replicate": [0, 0], "seed": [1, 1], "category": ["c", "c"],
        "sample_id": ["x", "y"], "score_panel": [0.6, 0.5],
        member_column("panel", 0): [0.9, 0.1], member_column("panel", 1): [0.45, 0.7],
        member_column("panel", 2): [0.45, 0.7]})
    outcome = pair_outcomes(samples, [("panel", "visual_appeal", 0.05)], "a", "b")
    assert outcome["outcome"].tolist() == [LOSS]
    without = samples.drop(columns=[member_column("panel", m) for m in range(3)])
    assert pair_outcomes(without, [("panel", "visual_appeal", 0.05)], "a", "b")["outcome"].tolist() == [WIN]


def test_text_faithfulness_has_four_outcomes(monkeypatch):
    from PIL import Image

    # the kind checker is sure of the kind named; the scene terms come from the prompt's id
    monkeypatch.setattr(text_match, "subject_kind_scores", lambda images, prompts, checker=None: [0.9] * len(images))
    terms = {"ok": {"colour": 0.9, "placement": 0.8, "background": 0.6},
             "sharper": {"colour": 1.0, "placement": 1.0, "background": 0.9},
             "wrong colour": {"colour": 0.0, "placement": 0.8, "background": 0.6},
             "faint colour": {"colour": text_match.TERM_MIN["colour"] / 2, "placement": 0.8, "background": 0.6}}
    monkeypatch.setattr(text_match, "attribute_terms", lambda image, prompt: terms[prompt.prompt_id])
    image = Image.new("RGB", (8, 8))
    scores = text_match.text_match_scores([image] * 4, [Prompt(key, "a red car", kind="car") for key in terms])
    # everything shown is 1, however well; a missing attribute costs its share, a faint one half of it
    assert scores == [1.0, 1.0, pytest.approx(3 / 4), pytest.approx(3.5 / 4)]
    monkeypatch.setattr(text_match, "subject_kind_scores", lambda images, prompts, checker=None: [0.15] * len(images))
    assert text_match.text_match_scores([image], [Prompt("ok", "a red car", kind="car")]) == [
        pytest.approx((3 + 0.15 / text_match.KIND_MIN) / 4)]  # the right scene, an unsure kind
    monkeypatch.setattr(text_match, "attribute_terms", lambda image, prompt: {})
    monkeypatch.setattr(text_match, "subject_kind_scores", lambda images, prompts, checker=None: [math.nan])
    assert math.isnan(text_match.text_match_scores([image], [Prompt("free", "love")])[0])

    # A, B, both, neither: both and neither are ties, reported as shares beside the win rate
    from photogenic.evaluation.comparisons import win_rate_table

    a, b = [1.0, 0.75, 1.0, 0.75, 1.0, 0.5], [0.75, 1.0, 1.0, 0.75, 0.5, 1.0]
    rows = [{"model": m, "prompt_id": f"p{i}", "replicate": 0, "seed": i, "category": "c", "sample_id": f"{m}{i}",
             "score_text_match": s} for m, scores in (("a", a), ("b", b)) for i, s in enumerate(scores)]
    judge = text_match.TextMatchJudge()
    info = [(judge.name, judge.criterion, judge.tie_margin)]
    comparisons = pair_outcomes(pd.DataFrame(rows), info, "a", "b")
    table = win_rate_table(comparisons, n_boot=100, level=0.95, seed=0)
    head = headline(table, info, comparisons, {judge.name: judge.faithful_at})["text_faithfulness"]
    assert (head["wins"], head["losses"], head["ties"]) == (2, 2, 2)
    assert head["both_share"] == pytest.approx(1 / 6) and head["neither_share"] == pytest.approx(1 / 6)


def test_an_evaluation_with_the_panel_stores_every_members_score_and_its_card(models, tmp_path):  # noqa: F811
    config = _config(tmp_path, *models, "evaluate.mlflow=false", "evaluate.max_prompts=3",
                     "evaluate.judges.visual_appeal=[rater_panel,technical_quality]",
                     "evaluate.judges.text_faithfulness=[]", *TINY_OVERRIDES)
    result = run_evaluation(config, progress=False)
    manifest = pd.read_parquet(f"{result.folder}/manifest.parquet")
    members = manifest[[member_column("rater_panel", m) for m in range(3)]].to_numpy()
    np.testing.assert_allclose(manifest["score_rater_panel"], members.mean(axis=1))
    comparisons = pd.read_parquet(f"{result.folder}/comparisons.parquet")
    assert len(comparisons[comparisons["judge"] == "rater_panel"]) == 3
    assert result.results["headline"]["visual_appeal"]["judge"] == "rater_panel"
    card = result.results["judge_cards"]["rater_panel"]
    assert len(card["held_out"]["member_auc"]) == 3
    assert (tmp_path / "data" / "judges" / "rater_panel" / card["key"] / "card.json").is_file()
    assert "The rater panel" in open(result.report, encoding="utf-8").read()


def test_the_demo_keeps_its_headline_judge_out_of_the_training_loop():
    """Early stopping picks the quality-tuned checkpoint by validation loss or the technical
    score of samples; the demo's headline visual-appeal judge must be neither."""
    from tests.conftest import REPO

    config = load_config(REPO / "configs" / "default.yaml")
    signal_judge = {"sample_quality": "technical_quality", "val_loss": None}
    headline_judge = config.evaluate.judges.visual_appeal[0]
    assert headline_judge == "rater_panel" and config.evaluate.judges.text_faithfulness[0] == "text_match"
    for stage in (config.training.pretrain, config.training.quality_tune):
        assert signal_judge[stage.early_stopping.metric] != headline_judge
