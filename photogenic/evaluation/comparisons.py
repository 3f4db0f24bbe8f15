"""From per-image scores to per-pair outcomes and win-rate tables (per judge and per category)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from photogenic.evaluation.judges.registry import member_column
from photogenic.evaluation.winrate import LOSS, TIE, WIN, compare, win_rate

ALL = "all"
PAIR_KEYS = ["prompt_id", "replicate"]


def pair_outcomes(samples: pd.DataFrame, judges: Iterable[tuple[str, str, float]], model_a: str,
                  model_b: str) -> pd.DataFrame:
    """One row per (prompt, seed, judge): both scores and the outcome for A (+1, 0, -1).

    ``samples`` has one row per image with ``model``, ``prompt_id``, ``replicate``, ``seed``,
    ``category`` and ``score_<judge>``; ``judges`` lists (name, criterion, tie_margin).
    Pairs where either score is NaN (the judge abstained) are left out.
    """
    a = samples[samples["model"] == model_a].set_index(PAIR_KEYS)
    b = samples[samples["model"] == model_b].set_index(PAIR_KEYS)
    common = a.index.intersection(b.index)
    if len(common) == 0:
        raise ValueError(f"models {model_a!r} and {model_b!r} share no (prompt, seed) pair to compare")
    a, b = a.loc[common], b.loc[common]
    if not (a["seed"].to_numpy() == b["seed"].to_numpy()).all():
        raise ValueError("paired images were drawn with different seeds")
    rows = []
    for name, criterion, margin in judges:
        sa, sb = a[f"score_{name}"].to_numpy(float), b[f"score_{name}"].to_numpy(float)
        members = _member_columns(a, name)
        if members:
            decided = panel_outcomes(a[members].to_numpy(float), b[members].to_numpy(float), margin)
        else:
            decided = [compare(float(x), float(y), margin) for x, y in zip(sa, sb)]
        for key, category, x, y, outcome, ia, ib in zip(common, a["category"], sa, sb, decided, a["sample_id"],
                                                        b["sample_id"]):
            if np.isnan(x) or np.isnan(y):
                continue
            rows.append({"prompt_id": key[0], "replicate": int(key[1]), "category": category, "judge": name,
                         "criterion": criterion, "score_a": float(x), "score_b": float(y),
                         "outcome": int(outcome), "sample_a": ia, "sample_b": ib})
    return pd.DataFrame(rows, columns=["prompt_id", "replicate", "category", "judge", "criterion", "score_a",
                                       "score_b", "outcome", "sample_a", "sample_b"])


def _member_columns(samples: pd.DataFrame, judge: str) -> list[str]:
    columns, m = [], 0
    while member_column(judge, m) in samples.columns:
        columns.append(member_column(judge, m))
        m += 1
    return columns


def panel_outcomes(members_a: np.ndarray, members_b: np.ndarray, tie_margin: float) -> np.ndarray:
    """A panel's outcome per pair (rows: pairs, columns: members' scores): each member votes
    A, B or tie on its own scores, the pair goes by the majority, as Emu's five raters did."""
    votes = np.array([[compare(x, y, tie_margin) for x, y in zip(row_a, row_b)]
                      for row_a, row_b in zip(members_a, members_b)], dtype=np.int8).reshape(members_a.shape)
    return majority(votes)


def majority(votes: np.ndarray) -> np.ndarray:
    """Per row of votes (+1 A, 0 tie, -1 B, one column per rater), the verdict most raters gave;
    a tie when no verdict has more votes than every other, as with 2 for A, 2 for B, 1 tie."""
    votes = np.asarray(votes)
    counts = np.stack([(votes == v).sum(axis=1) for v in (WIN, TIE, LOSS)], axis=1)
    best = counts.max(axis=1, keepdims=True)
    unique = (counts == best).sum(axis=1) == 1
    return np.where(unique, np.array([WIN, TIE, LOSS])[counts.argmax(axis=1)], TIE).astype(np.int8)


def win_rate_table(outcomes: pd.DataFrame, *, n_boot: int, level: float, seed: int,
                   group: str = "judge") -> pd.DataFrame:
    """Win rates per ``group`` value (a judge, or a criterion for human votes), overall (category
    ``all``) and per prompt category."""
    rows = []
    for key, frame in outcomes.groupby(group, sort=False):
        criterion = frame["criterion"].iloc[0]
        parts = [(ALL, frame)] + [(c, f) for c, f in frame.groupby("category", sort=True)]
        for category, part in parts:
            stats = win_rate(part["outcome"].to_numpy(), n_boot=n_boot, level=level, seed=seed)
            rows.append({group: key, "criterion": criterion, "category": category, **stats.as_dict()})
    return pd.DataFrame(rows)
