"""Whose pictures a seed of the sample world draws: one declared fact.

A judge that learnt from the sample world must never have seen the pictures it is asked about,
nor the pool the models it judges learnt from. Every pool of the world is a function of its seed
(``PoolContext``), so keeping the pictures apart is keeping the seeds apart: each user of the
world draws its pools from its own range below, the ranges are disjoint
(``tests/samplepool/test_seeds.py`` checks that, and that the seeds the tests and benchmarks pass
fall in ``POOLS``), and the config refuses a ``sample_pool.seed`` outside ``POOLS``.
"""

from __future__ import annotations

#: the demo's pool (``sample_pool.seed``, 0), the pool the evaluation prompts are held out from,
#: and every pool a test or benchmark draws
POOLS = range(0, 7919)
#: the subject-kind checker's training pool (``judges/sample_world/kind_check.py``), and the pool
#: its accuracy is measured on (``benchmarks/subject_legibility.py``)
KIND_CHECKER = range(7919, 7920)
KIND_CHECKER_HELD_OUT = range(12345, 12346)
#: the rater panel's training pool, then the further held-out pool its agreement is measured on
#: (``judges/sample_world/rater_panel.py``)
RATER_PANEL_TRAINING = range(1_000_003, 1_000_004)
RATER_PANEL_HELD_OUT = range(1_000_011, 1_000_012)

SEED_RANGES = {
    "pools": POOLS,
    "kind_checker": KIND_CHECKER,
    "kind_checker_held_out": KIND_CHECKER_HELD_OUT,
    "rater_panel_training": RATER_PANEL_TRAINING,
    "rater_panel_held_out": RATER_PANEL_HELD_OUT,
}


def owner(seed: int) -> str | None:
    """The name of the range ``seed`` falls in, or None."""
    return next((name for name, seeds in SEED_RANGES.items() if seed in seeds), None)
