"""Every benchmark imports: a name moved or renamed in the library breaks a benchmark at its
first line, which nothing else runs in the default suite (they are long)."""

import importlib

import pytest

from tests.conftest import REPO

BENCHMARKS = sorted(p.stem for p in (REPO / "benchmarks").glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("name", BENCHMARKS)
def test_the_benchmark_imports(name):
    module = importlib.import_module(f"benchmarks.{name}")
    if not name.startswith("_"):
        assert callable(getattr(module, "main", None)), f"benchmarks/{name}.py has no main()"
