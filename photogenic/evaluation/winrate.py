"""Pairwise win rates of model A against model B, with bootstrap intervals and a sign test.

One *outcome* per comparison (a prompt and seed rendered by both models, judged once):
``+1`` A wins, ``0`` tie, ``-1`` B wins. From ``n`` outcomes with ``w`` wins, ``t`` ties and
``l`` losses:

- ``win_rate = (w + t/2) / n``: ties split evenly, so 0.5 means parity and the same number
  serves the promotion gate ("lower bound above 50%"). Emu reports the three shares separately
  (82.9% win, 15.4% loss, the rest ties); ``win_share``, ``tie_share`` and ``loss_share`` are
  those.
- the interval is the percentile bootstrap of ``win_rate``: ``n_boot`` resamples of the ``n``
  outcomes with replacement (a seeded generator, so a report is reproducible), the
  ``(1-level)/2`` and ``(1+level)/2`` quantiles of their win rates.
- the p-value is the two-sided sign test of wins against losses, ties dropped
  (``scipy.stats.binomtest(w, w + l, 0.5)``): the chance of a split at least this lopsided if
  neither model were preferred. 1.0 when there are no decisive comparisons.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

WIN, TIE, LOSS = 1, 0, -1


@dataclass(frozen=True)
class WinRate:
    wins: int
    ties: int
    losses: int
    win_rate: float
    ci_low: float
    ci_high: float
    p_value: float
    level: float

    @property
    def n(self) -> int:
        return self.wins + self.ties + self.losses

    @property
    def win_share(self) -> float:
        return self.wins / self.n if self.n else float("nan")

    @property
    def tie_share(self) -> float:
        return self.ties / self.n if self.n else float("nan")

    @property
    def loss_share(self) -> float:
        return self.losses / self.n if self.n else float("nan")

    def as_dict(self) -> dict:
        out = asdict(self)
        out.update(n=self.n, win_share=self.win_share, tie_share=self.tie_share, loss_share=self.loss_share)
        return out


def compare(score_a: float, score_b: float, tie_margin: float = 0.0) -> int:
    """One judge's outcome: A wins when its score is higher by more than ``tie_margin``."""
    diff = score_a - score_b
    if diff > tie_margin:
        return WIN
    if diff < -tie_margin:
        return LOSS
    return TIE


def outcomes_from_scores(scores_a: Sequence[float], scores_b: Sequence[float], tie_margin: float = 0.0) -> np.ndarray:
    """Element-wise ``compare``; pairs where either score is missing (NaN) are left out."""
    a, b = np.asarray(scores_a, dtype=float), np.asarray(scores_b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"scores of A ({a.shape}) and B ({b.shape}) must pair up one to one")
    keep = ~(np.isnan(a) | np.isnan(b))
    return np.array([compare(x, y, tie_margin) for x, y in zip(a[keep], b[keep])], dtype=np.int8)


def win_rate(outcomes: Sequence[int], *, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> WinRate:
    """Win/tie/loss counts, the tie-split win rate, its bootstrap interval and the sign test."""
    values = np.asarray(outcomes, dtype=np.int8)
    if values.size and not np.isin(values, (WIN, TIE, LOSS)).all():
        raise ValueError("outcomes must be +1 (A wins), 0 (tie) or -1 (B wins)")
    wins, ties, losses = int((values == WIN).sum()), int((values == TIE).sum()), int((values == LOSS).sum())
    n = values.size
    if n == 0:
        nan = float("nan")
        return WinRate(0, 0, 0, nan, nan, nan, 1.0, level)
    # a win is worth 1, a tie 1/2: the win rate is the mean of these points
    points = (values.astype(np.float64) + 1.0) / 2.0
    rate = float(points.mean())
    rng = np.random.default_rng(seed)
    # resampled in chunks: n_boot x n indices at once would be hundreds of MB for large n
    chunk = max(1, 2_000_000 // n)
    boot = np.concatenate([points[rng.integers(0, n, size=(min(chunk, n_boot - start), n))].mean(axis=1)
                           for start in range(0, n_boot, chunk)])
    low, high = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    decisive = wins + losses
    from scipy.stats import binomtest  # here: every command that lists the stages imports this module

    p_value = float(binomtest(wins, decisive, 0.5).pvalue) if decisive else 1.0
    return WinRate(wins, ties, losses, rate, float(low), float(high), p_value, level)
