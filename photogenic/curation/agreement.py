"""Inter-annotator agreement: Cohen's kappa for two raters, Fleiss' kappa for more.

Both treat answers as categories (a 1-5 rating is five categories: unweighted kappa). Which one
a question gets is decided by who rated the overlapping items: exactly two people, both rating
every overlapping item -> Cohen; otherwise Fleiss, over the items that have the most common
number of ratings (Fleiss needs the same number per item; the raters may differ per item).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass

import numpy as np


def cohen_kappa(first: Sequence[Hashable], second: Sequence[Hashable]) -> float | None:
    """Cohen's kappa of two raters' labels on the same items; None when undefined (one
    category only, so chance agreement is 1)."""
    if len(first) != len(second):
        raise ValueError("both raters must label the same items")
    if not first:
        return None
    categories = sorted(set(first) | set(second), key=str)
    n = len(first)
    observed = sum(a == b for a, b in zip(first, second)) / n
    count_a, count_b = Counter(first), Counter(second)
    expected = sum(count_a[c] * count_b[c] for c in categories) / n**2
    return None if expected == 1 else (observed - expected) / (1 - expected)


def fleiss_kappa(counts: np.ndarray) -> float | None:
    """Fleiss' kappa from an items x categories matrix of rating counts (each row sums to the
    same number of raters n >= 2); None when undefined."""
    counts = np.asarray(counts, dtype=float)
    if counts.ndim != 2 or counts.shape[0] == 0:
        return None
    raters = counts.sum(axis=1)
    if not np.allclose(raters, raters[0]) or raters[0] < 2:
        raise ValueError("Fleiss' kappa needs the same number (>= 2) of ratings on every item")
    n = raters[0]
    p_item = ((counts * (counts - 1)).sum(axis=1)) / (n * (n - 1))
    p_bar = p_item.mean()
    p_cat = counts.sum(axis=0) / counts.sum()
    p_e = float((p_cat**2).sum())
    return None if p_e == 1 else float((p_bar - p_e) / (1 - p_e))


@dataclass(frozen=True)
class Agreement:
    method: str  # "cohen", "fleiss" or "none" (no overlapping items)
    kappa: float | None
    items: int
    raters: int
    #: share of overlapping items on which every rater gave the same answer
    unanimous: float | None

    def as_dict(self) -> dict:
        return asdict(self)


def agreement(ratings: dict[str, list[tuple[str, Hashable]]]) -> Agreement:
    """Agreement over items rated more than once; ``ratings`` maps item -> [(rater, answer)]."""
    multi = {item: pairs for item, pairs in ratings.items() if len(pairs) >= 2}
    if not multi:
        return Agreement("none", None, 0, 0, None)
    raters = {rater for pairs in multi.values() for rater, _ in pairs}
    unanimous = sum(len({a for _, a in pairs}) == 1 for pairs in multi.values()) / len(multi)
    if len(raters) == 2 and all(len(pairs) == 2 for pairs in multi.values()):
        first, second = sorted(raters)
        by_rater = [dict(pairs) for pairs in multi.values()]
        kappa = cohen_kappa([r[first] for r in by_rater], [r[second] for r in by_rater])
        return Agreement("cohen", kappa, len(multi), 2, unanimous)
    size = Counter(len(pairs) for pairs in multi.values()).most_common(1)[0][0]
    used = [pairs for pairs in multi.values() if len(pairs) == size]
    categories = sorted({a for pairs in used for _, a in pairs}, key=str)
    index = {c: i for i, c in enumerate(categories)}
    counts = np.zeros((len(used), len(categories)))
    for row, pairs in enumerate(used):
        for _, answer in pairs:
            counts[row, index[answer]] += 1
    used_raters = {rater for pairs in used for rater, _ in pairs}
    return Agreement("fleiss", fleiss_kappa(counts), len(used), len(used_raters), unanimous)
