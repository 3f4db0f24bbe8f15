"""The sample world's seeds are one declared fact: the ranges are disjoint, every user draws from
its own, and no pool the demo, the prompts, the tests or the benchmarks draw is one a judge
learnt from or is measured on."""

from __future__ import annotations

import ast
import itertools

import pytest

from photogenic.config import load_config
from photogenic.errors import ConfigError
from photogenic.evaluation.judges.sample_world import kind_check
from photogenic.samplepool import seeds
from tests.conftest import REPO

#: calls that draw a pool of the world, and where their pool seed is (keyword, position)
POOL_CALLS = {"create": ("seed", 1), "training_images": ("seed", 1), "labelled_pool": ("seed", 1),
              "generate_sample_pool": ("seed", None), "sample_pool": ("seed", 1),
              "training_captions": ("pool_seed", 1), "sample_world_prompts": ("pool_seed", None)}


def test_the_ranges_are_disjoint():
    for (a, first), (b, second) in itertools.combinations(seeds.SEED_RANGES.items(), 2):
        assert not set(first) & set(second), f"{a} and {b} share seeds"


def test_each_user_draws_from_its_own_range():
    assert load_config(None).sample_pool.seed in seeds.POOLS
    assert load_config(REPO / "configs" / "default.yaml").sample_pool.seed in seeds.POOLS
    assert seeds.owner(kind_check.POOL_SEED) == "kind_checker"
    assert seeds.owner(kind_check.HELD_OUT_SEED) == "kind_checker_held_out"
    assert seeds.owner(seeds.RATER_PANEL_TRAINING.start) == "rater_panel_training"
    assert seeds.owner(seeds.RATER_PANEL_HELD_OUT.start) == "rater_panel_held_out"
    with pytest.raises(ConfigError, match="rater_panel_training"):
        load_config(None, [f"sample_pool.seed={seeds.RATER_PANEL_TRAINING.start}"])


def _literal_pool_seeds():
    """(file, line, seed) for every literal seed passed to a call that draws a world pool."""
    for path in itertools.chain(*(sorted((REPO / top).rglob("*.py")) for top in ("tests", "benchmarks", "photogenic"))):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            if name not in POOL_CALLS:
                continue
            keyword, position = POOL_CALLS[name]
            value = next((k.value for k in node.keywords if k.arg == keyword), None)
            if value is None and position is not None and len(node.args) > position:
                value = node.args[position]
            if isinstance(value, ast.Constant) and isinstance(value.value, int):
                yield path.relative_to(REPO), node.lineno, value.value


def test_pools_drawn_in_the_code_tests_and_benchmarks_are_none_of_the_judges():
    found = list(_literal_pool_seeds())
    assert len(found) > 5  # the scan sees the calls it is meant to
    strays = [f"{path}:{line} seed {seed} ({seeds.owner(seed)})" for path, line, seed in found
              if seed not in seeds.POOLS]
    assert not strays, "pools drawn with seeds outside samplepool.seeds.POOLS: " + "; ".join(strays)
