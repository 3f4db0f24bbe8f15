"""The judges there are, built by name from ``evaluate.judges``: what a judge is, the two
criteria it can stand in for, registration and lookup (see the package docstring for the list).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
from PIL import Image

from photogenic.errors import ConfigError
from photogenic.evaluation import judges as _package
from photogenic.evaluation.prompts import Prompt

VISUAL_APPEAL = "visual_appeal"
TEXT_FAITHFULNESS = "text_faithfulness"
CRITERIA = (VISUAL_APPEAL, TEXT_FAITHFULNESS)


class Judge(Protocol):
    name: str
    criterion: str
    tie_margin: float

    def score(self, images: list[Image.Image], prompts: list[Prompt]) -> list[float]: ...


#: name -> factory(judges config section) -> Judge
JUDGES: dict[str, Callable[[Any], Judge]] = {}
_DISCOVERED = False


def register_judge(name: str, factory: Callable[[Any], Judge]) -> None:
    JUDGES[name] = factory


def known_judges() -> dict[str, Callable[[Any], Judge]]:
    """Every registered judge; the modules of this package register theirs when first asked."""
    global _DISCOVERED
    if not _DISCOVERED:
        for module in pkgutil.walk_packages(_package.__path__, prefix=f"{_package.__name__}."):
            importlib.import_module(module.name)
        _DISCOVERED = True
    return JUDGES


def tie_margin(settings: Any, name: str, default: float) -> float:
    """The judge's tie margin: ``evaluate.judges.tie_margins[name]``, else its own default."""
    return float(settings.tie_margins.get(name, default))


def build_judges(settings: Any) -> list[Judge]:
    """The judges named in ``settings.visual_appeal`` and ``settings.text_faithfulness``, in order."""
    judges, known = [], known_judges()
    for criterion in CRITERIA:
        for name in getattr(settings, criterion):
            if name not in known:
                raise ConfigError(f"Unknown judge {name!r} in evaluate.judges.{criterion}; the judges are: "
                                  f"{', '.join(sorted(known))}.")
            judge = known[name](settings)
            if judge.criterion != criterion:
                raise ConfigError(f"The judge {name!r} measures {judge.criterion}, not {criterion}: move it to "
                                  f"evaluate.judges.{judge.criterion}.")
            judges.append(judge)
    return judges


def score_all(judge: Judge, images: list[Image.Image], prompts: list[Prompt], batch_size: int = 16) -> np.ndarray:
    out: list[float] = []
    for start in range(0, len(images), batch_size):
        out.extend(judge.score(images[start:start + batch_size], prompts[start:start + batch_size]))
    return np.asarray(out, dtype=np.float64)
