"""From per-image scores to per-pair outcomes and win-rate tables (per judge and per category)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from photogenic.evaluation.winrate import compare, win_rate

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
        for key, category, x, y, ia, ib in zip(common, a["category"], sa, sb, a["sample_id"], b["sample_id"]):
            if np.isnan(x) or np.isnan(y):
                continue
            rows.append({"prompt_id": key[0], "replicate": int(key[1]), "category": category, "judge": name,
                         "criterion": criterion, "score_a": float(x), "score_b": float(y),
                         "outcome": compare(float(x), float(y), margin), "sample_a": ia, "sample_b": ib})
    return pd.DataFrame(rows, columns=["prompt_id", "replicate", "category", "judge", "criterion", "score_a",
                                       "score_b", "outcome", "sample_a", "sample_b"])


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
