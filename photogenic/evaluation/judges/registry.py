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
from photogenic.paths import under_root

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


def build_judges(settings: Any, data_root: str | None = None) -> list[Judge]:
    """The judges named in ``settings.visual_appeal`` and ``settings.text_faithfulness``, in order.

    Judges that learn keep their weights under ``data_root`` (``cache``); without a root they
    learn in memory, once per process, and write nothing."""
    judges, known = [], known_judges()
    settings = _rooted(settings, data_root)
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


def _rooted(settings: Any, data_root: str | None) -> Any:
    if data_root is None:
        return settings.model_copy(update={"cache": None})
    if settings.cache is None:
        return settings
    return settings.model_copy(update={"cache": under_root(data_root, settings.cache, "evaluate.judges.cache")})


def prepare_judges(judges: list[Judge], workers: int = 2, progress: bool = True) -> None:
    """Every judge that learns ready to score: the weights it is missing fitted now, all of them
    together (``sample_world.learned``), so that no judge trains in the middle of an evaluation."""
    from photogenic.evaluation.judges.sample_world.learned import prepare

    prepare([learner for judge in judges for learner in getattr(judge, "learns", ())], workers, progress)


def score_all(judge: Judge, images: list[Image.Image], prompts: list[Prompt], batch_size: int = 16) -> np.ndarray:
    out: list[float] = []
    for start in range(0, len(images), batch_size):
        out.extend(judge.score(images[start:start + batch_size], prompts[start:start + batch_size]))
    return np.asarray(out, dtype=np.float64)


def member_column(judge: str, member: int) -> str:
    """The manifest column of one member's score, for a judge that is a panel of raters."""
    return f"score_{judge}__member{member}"


def score_members_all(judge: Judge, images: list[Image.Image], prompts: list[Prompt]) -> np.ndarray | None:
    """Images × members for a panel judge (one with ``score_members``), else None: each member
    then votes on a pair by itself, and the pair goes by the majority."""
    score_members = getattr(judge, "score_members", None)
    return None if score_members is None else np.asarray(score_members(images, prompts), dtype=np.float64)
