"""The scorers there are, and the cascade a config asks for.

A scorer registers itself with ``@register_scorer``. Every module under
photogenic/filtering/scorers/ is imported the first time the scorers are asked for, so a new
scorer is one file there plus its config section (a field of ``FilterConfig`` in
photogenic/config.py, or ``register_filter_section`` for one defined outside the project); the
stage, the funnel report, the dataset card and the gate find it here.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any, TypeVar

from photogenic.config import RunConfig
from photogenic.filtering import scorers
from photogenic.filtering.cascade import order
from photogenic.filtering.scorer import GateChecks, Scorer

S = TypeVar("S", bound=type[Scorer])

_SCORERS: dict[str, type[Scorer]] = {}
_DISCOVERED = False


def register_scorer(cls: S) -> S:
    """Class decorator: make ``cls`` a scorer of the cascade, under ``cls.name``."""
    known = _SCORERS.get(cls.name)
    if known is not None and known is not cls:
        raise ValueError(f"Two scorers are named {cls.name!r}: {known.__module__}.{known.__name__} and "
                         f"{cls.__module__}.{cls.__name__}.")
    _SCORERS[cls.name] = cls
    return cls


def scorer_classes() -> list[type[Scorer]]:
    """Every registered scorer class, the project's own first (in module order)."""
    global _DISCOVERED
    if not _DISCOVERED:
        for module in sorted(pkgutil.iter_modules(scorers.__path__), key=lambda m: m.name):
            importlib.import_module(f"{scorers.__name__}.{module.name}")
        _DISCOVERED = True
    return list(_SCORERS.values())


def scorer_class(name: str) -> type[Scorer] | None:
    return next((cls for cls in scorer_classes() if cls.name == name), None)


def build_scorers(config: RunConfig, check: bool = True) -> list[Scorer]:
    """The scorers ``config`` turns on, in cascade order. ``check``: a configured model that
    cannot be loaded is a ConfigError here, in the main process, before any worker starts."""
    built = [cls.from_config(config, check=check) for cls in scorer_classes()]
    return order([scorer for scorer in built if scorer is not None])


def scorers_off(config: RunConfig) -> list[dict[str, Any]]:
    """The scorers that did not run and why, for the funnel report and the dataset card."""
    off = []
    for cls in scorer_classes():
        why = cls.off_reason(config)
        if why is not None:
            off.append({"name": cls.name, "enabled": False, "why": why})
    return off


def gate_checks(config: RunConfig) -> GateChecks:
    """What the auto-filter's gate checks on the candidates: every scorer's own checks, joined."""
    joined = GateChecks()
    for scorer in build_scorers(config, check=False):
        checks = scorer.gate_checks()
        joined.bounds.update(checks.bounds)
        joined.nullable += checks.nullable
        joined.unique += checks.unique
        if checks.max_rows is not None:
            joined.max_rows = checks.max_rows if joined.max_rows is None else min(joined.max_rows, checks.max_rows)
    return joined

