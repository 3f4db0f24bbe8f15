"""Which sample carries which defect: one plan for the whole pool, decided before any drawing.

The plan depends only on (n, seed, spec), so every worker process can rebuild or receive it and
then render any sample on its own. A near or exact duplicate needs its original, and the plan
names that original: another sample without image defects, never itself a copy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from photogenic.samplepool.rng import PLAN, stream
from photogenic.samplepool.spec import (
    CAPTION_DEFECTS,
    DEFECTS,
    DUPLICATE_DEFECTS,
    FILE_DEFECTS,
    IMAGE_DEFECTS,
    VISUAL_GROUPS,
    SamplePoolSpec,
)


@dataclass(frozen=True)
class SamplePlan:
    """The defects of one sample (canonical order) and, for a near-duplicate, its original."""

    defects: tuple[str, ...] = ()
    duplicate_of: int | None = None

    @property
    def image_defects(self) -> tuple[str, ...]:
        return tuple(d for d in self.defects if d in IMAGE_DEFECTS)


def plan_pool(n: int, seed: int, spec: SamplePoolSpec) -> tuple[SamplePlan, ...]:
    """Allocate every defect to exactly ``round(share * n)`` samples (fewer if too few qualify)."""
    rng = stream(PLAN, seed)
    assigned: list[set[str]] = [set() for _ in range(n)]
    everyone = np.arange(n)

    _allocate(rng, FILE_DEFECTS, everyone, assigned, spec)
    readable = np.array([i for i in range(n) if "corrupt" not in assigned[i]], dtype=np.int64)
    for group in VISUAL_GROUPS:
        _allocate(rng, group, readable, assigned, spec)
    duplicates = _allocate_duplicates(rng, assigned, spec)
    _allocate(rng, CAPTION_DEFECTS, everyone, assigned, spec)

    return tuple(
        SamplePlan(tuple(d for d in DEFECTS if d in assigned[i]), duplicates.get(i)) for i in range(n)
    )


def _allocate(
    rng: np.random.Generator,
    group: tuple[str, ...],
    eligible: np.ndarray,
    assigned: list[set[str]],
    spec: SamplePoolSpec,
) -> None:
    """Give each defect of a mutually exclusive group to its own disjoint random subset."""
    order = rng.permutation(eligible)
    start = 0
    for defect in group:
        count = min(_count(spec.share(defect), len(assigned)), len(order) - start)
        for i in order[start:start + count]:
            assigned[int(i)].add(defect)
        start += count


def _allocate_duplicates(
    rng: np.random.Generator, assigned: list[set[str]], spec: SamplePoolSpec
) -> dict[int, int]:
    """Turn some clean samples into copies of other clean samples; returns copy -> original.

    Only samples without image defects qualify on both sides, so a copy differs from its
    original by the near-duplicate alteration alone, which is what a dedup stage must catch.
    """
    clean = rng.permutation([i for i, d in enumerate(assigned) if not d])
    counts = [_count(spec.share(kind), len(assigned)) for kind in DUPLICATE_DEFECTS]
    total = min(sum(counts), len(clean) // 2)
    originals = clean[total:]
    duplicates: dict[int, int] = {}
    start = 0
    for kind, count in zip(DUPLICATE_DEFECTS, counts):
        for copy in clean[start:min(start + count, total)]:
            assigned[int(copy)].add(kind)
            duplicates[int(copy)] = int(rng.choice(originals))
        start += count
    return duplicates


def _count(share: float, n: int) -> int:
    return int(round(share * n))
