"""Agreement statistics against values computed by hand."""

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from photogenic.curation.agreement import agreement, cohen_kappa, fleiss_kappa


def test_cohen_kappa_hand_computed():
    # 50 items: both yes 20, A yes/B no 5, A no/B yes 10, both no 15
    # p_o = 35/50 = 0.7; p_yes = 25/50 * 30/50 = 0.3, p_no = 25/50 * 20/50 = 0.2; p_e = 0.5
    # kappa = (0.7 - 0.5) / (1 - 0.5) = 0.4
    a = ["y"] * 20 + ["y"] * 5 + ["n"] * 10 + ["n"] * 15
    b = ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))


def test_cohen_kappa_undefined_when_one_category():
    assert cohen_kappa(["k", "k"], ["k", "k"]) is None


def test_fleiss_kappa_hand_computed():
    # Fleiss (1971) as worked on Wikipedia: 10 items, 14 raters, 5 categories -> 0.210
    counts = np.array([
        [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
    ])
    assert fleiss_kappa(counts) == pytest.approx(0.20993, abs=1e-4)


def test_fleiss_needs_equal_raters_per_item():
    with pytest.raises(ValueError, match="same number"):
        fleiss_kappa(np.array([[2, 0], [1, 2]]))


def test_two_raters_on_every_overlap_item_get_cohen():
    ratings = {"s1": [("a", "keep"), ("b", "keep")], "s2": [("a", "keep"), ("b", "reject")],
               "s3": [("a", "reject"), ("b", "reject")], "s4": [("a", "keep")]}
    result = agreement(ratings)
    # 3 overlapping items, p_o = 2/3; a: keep 2/3, b: keep 1/3 -> p_e = 2/9 + 2/9 = 4/9
    assert result.method == "cohen" and result.items == 3 and result.raters == 2
    assert result.kappa == pytest.approx((2 / 3 - 4 / 9) / (1 - 4 / 9))
    assert result.unanimous == pytest.approx(2 / 3)


def test_pairs_of_different_raters_get_fleiss():
    # 4 items, 2 ratings each by varying pairs: P_i = 1, 0, 1, 1 -> P = 0.75
    # keep 5/8, reject 3/8 -> P_e = 34/64; kappa = (0.75 - 34/64) / (1 - 34/64) = 7/15
    ratings = {"s1": [("a", "keep"), ("b", "keep")], "s2": [("b", "keep"), ("c", "reject")],
               "s3": [("a", "reject"), ("c", "reject")], "s4": [("a", "keep"), ("c", "keep")]}
    result = agreement(ratings)
    assert result.method == "fleiss" and result.raters == 3 and result.items == 4
    assert result.kappa == pytest.approx(7 / 15)


def test_no_overlap_means_no_agreement():
    assert agreement({"s1": [("a", "keep")]}).method == "none"
