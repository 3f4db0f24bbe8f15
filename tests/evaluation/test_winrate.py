"""Win rates, intervals and sign tests against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from photogenic.evaluation.comparisons import pair_outcomes, win_rate_table
from photogenic.evaluation.winrate import compare, outcomes_from_scores, win_rate


def test_counts_rate_and_sign_test_by_hand():
    # 6 wins, 2 ties, 2 losses: win rate (6 + 2/2) / 10 = 0.7
    result = win_rate([1] * 6 + [0] * 2 + [-1] * 2, n_boot=500)
    assert (result.wins, result.ties, result.losses, result.n) == (6, 2, 2, 10)
    assert result.win_rate == pytest.approx(0.7)
    assert (result.win_share, result.tie_share, result.loss_share) == (0.6, 0.2, 0.2)
    # sign test on 6 wins vs 2 losses, ties dropped: 2 * (C(8,6) + C(8,7) + C(8,8)) / 2^8 = 74/256
    assert result.p_value == pytest.approx(74 / 256)


def test_sign_test_without_ties_by_hand():
    # 7 of 10: 2 * (120 + 45 + 10 + 1) / 1024
    assert win_rate([1] * 7 + [-1] * 3).p_value == pytest.approx(352 / 1024)
    # all 12 won: 2 / 2^12
    assert win_rate([1] * 12).p_value == pytest.approx(2 / 4096)


def test_degenerate_cases():
    all_won = win_rate([1] * 20)
    assert (all_won.win_rate, all_won.ci_low, all_won.ci_high) == (1.0, 1.0, 1.0)
    all_tied = win_rate([0] * 8)
    assert (all_tied.win_rate, all_tied.ci_low, all_tied.ci_high, all_tied.p_value) == (0.5, 0.5, 0.5, 1.0)
    empty = win_rate([])
    assert empty.n == 0 and math.isnan(empty.win_rate) and empty.p_value == 1.0
    with pytest.raises(ValueError):
        win_rate([2, 1])


def test_bootstrap_interval_matches_the_normal_approximation_and_is_seeded():
    # n = 1000 at p = 0.7: the binomial interval is 0.7 +- 1.96 sqrt(0.21 / 1000) = +-0.0284
    outcomes = np.array([1] * 700 + [-1] * 300)
    result = win_rate(outcomes, n_boot=4000, seed=3)
    half = 1.96 * math.sqrt(0.7 * 0.3 / 1000)
    assert result.ci_low == pytest.approx(0.7 - half, abs=0.004)
    assert result.ci_high == pytest.approx(0.7 + half, abs=0.004)
    assert win_rate(outcomes, n_boot=4000, seed=3) == result
    # a wider level gives a wider interval
    wide = win_rate(outcomes, n_boot=4000, seed=3, level=0.99)
    assert wide.ci_low < result.ci_low and wide.ci_high > result.ci_high


def test_compare_with_tie_margin_and_missing_scores():
    assert compare(0.50, 0.40, 0.05) == 1
    assert compare(0.42, 0.40, 0.05) == 0
    assert compare(0.30, 0.40, 0.05) == -1
    assert outcomes_from_scores([1.0, np.nan, 0.2, 0.5], [0.5, 0.1, 0.4, 0.5]).tolist() == [1, -1, 0]


def test_per_judge_and_category_table():
    samples = pd.DataFrame([
        {"model": m, "prompt_id": f"p{i}", "replicate": 0, "seed": i, "category": "food" if i < 4 else "car",
         "sample_id": f"{m}{i}", "score_j": s}
        for m, scores in (("A", [0.9, 0.9, 0.9, 0.1, 0.5, 0.9]), ("B", [0.1, 0.1, 0.1, 0.9, 0.5, 0.1]))
        for i, s in enumerate(scores)
    ])
    outcomes = pair_outcomes(samples, [("j", "visual_appeal", 0.0)], "A", "B")
    assert outcomes["outcome"].tolist() == [1, 1, 1, -1, 0, 1]
    table = win_rate_table(outcomes, n_boot=200, level=0.95, seed=0).set_index("category")
    assert table.loc["all", "win_rate"] == pytest.approx(4.5 / 6)
    assert table.loc["food", "win_rate"] == pytest.approx(0.75)
    assert (table.loc["car", "wins"], table.loc["car", "ties"]) == (1, 1)
    assert table.loc["car", "win_rate"] == pytest.approx(0.75)
