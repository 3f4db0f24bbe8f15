"""What a scorer is: a named, versioned, costed step of the cascade.

A scorer scores a batch of manifest rows (and their pixels, when it needs them) into columns
named ``score_<name>`` or ``score_<name>_<part>``, and says for each row whether its thresholds
reject it, and why. The cascade orders scorers by ``cost_ms`` and gives each only the rows that
survived the cheaper ones, which is where its speed comes from.

A scorer declares itself once: its class (registered with
``photogenic.filtering.registry.register_scorer``) says how the config turns it on
(``from_config``), why it is off (``off_reason``), and which of its columns its thresholds bound
(``describe()``'s ``column_thresholds``, or ``bounded_by`` over its config section). The
cascade, the funnel report, the dataset card and the Great Expectations gate all read it from
there.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import BaseModel

if TYPE_CHECKING:
    from photogenic.config import RunConfig

Columns = dict[str, list[Any]]
SCORE_PREFIX = "score_"


@dataclass
class GateChecks:
    """What the auto-filter's quality gate checks on the survivors of one scorer."""

    #: column -> (min, max): every survivor's value lies inside (either bound optional)
    bounds: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    #: bounded columns a survivor may lack (not every row is scored: uncaptioned rows, missing metadata)
    nullable: list[str] = field(default_factory=list)
    #: columns no two survivors share (near-duplicate clusters)
    unique: list[str] = field(default_factory=list)
    #: the most survivors there may be (top-k)
    max_rows: int | None = None


class Scorer(ABC):
    #: short name: the prefix of its columns and the name rejections carry
    name: ClassVar[str]
    #: bump when a change alters its scores, so recorded scores can be told apart
    version: ClassVar[str]
    #: rough cost per image in milliseconds on one CPU core, for ordering the cascade
    cost_ms: ClassVar[float]
    #: whether ``score`` needs decoded pixels; if not, it runs on manifest rows in the main process
    needs_pixels: ClassVar[bool] = False
    #: the config section under ``filter`` holding its settings (default: its name)
    section: ClassVar[str | None] = None
    #: keys of that section that bound one of its columns: key -> (column part, "min" or "max");
    #: part None is the column ``score_<name>`` itself
    bounded_by: ClassVar[dict[str, tuple[str | None, str]]] = {}
    #: whether ``photogenic filter calibrate`` fits its ``bounded_by`` thresholds from people's
    #: stage-1 verdicts (False: a policy, such as what counts as offensive, stays as configured)
    calibrated: ClassVar[bool] = True
    #: column parts its bounds may skip on a survivor (see GateChecks.nullable)
    nullable_parts: ClassVar[tuple[str | None, ...]] = ()
    #: column parts no two survivors share (see GateChecks.unique)
    unique_parts: ClassVar[tuple[str | None, ...]] = ()

    def __init__(self, config: BaseModel | None = None):
        #: the scorer's config section: its thresholds
        self.config = config

    @classmethod
    def settings(cls, config: RunConfig) -> Any:
        return getattr(config.filter, cls.section or cls.name)

    @classmethod
    def from_config(cls, config: RunConfig, check: bool = True) -> Scorer | None:
        """The scorer ``config`` asks for, or None when it leaves it off. ``check``: fail here,
        with a ConfigError naming the key, if a model it needs cannot be loaded (the stage does,
        before any worker starts); the gate only reads the thresholds."""
        settings = cls.settings(config)
        return cls(settings) if settings.enabled else None

    @classmethod
    def off_reason(cls, config: RunConfig) -> str | None:
        """Why ``config`` leaves it off, for the funnel report and the dataset card (None: it is
        on, or being off is the ordinary case not worth listing)."""
        settings = cls.settings(config)
        return None if settings.enabled else f"disabled (filter.{cls.section or cls.name}.enabled=false)"

    def column(self, part: str | None = None) -> str:
        return f"{SCORE_PREFIX}{self.name}" + (f"_{part}" if part else "")

    @abstractmethod
    def score(self, rows: list[dict[str, Any]], images: list[np.ndarray] | None) -> Columns:
        """Columns for the rows (each list as long as ``rows``); ``images`` are HxWx3 uint8 RGB
        arrays when ``needs_pixels``, else None."""

    @abstractmethod
    def reasons(self, columns: Columns) -> list[str | None]:
        """Per row: why the thresholds reject it, or None to keep it."""

    def describe(self) -> dict[str, Any]:
        """What the funnel report and run metadata say about this scorer."""
        described = {"name": self.name, "version": self.version, "cost_ms": self.cost_ms}
        if self.config is not None:
            described["thresholds"] = self.config.model_dump(mode="json")
        return described

    def gate_checks(self) -> GateChecks:
        """What the gate checks on its survivors: the bounds ``describe()`` gives (see
        ``column_bounds``) and the declared nullable and unique columns."""
        bounds = {column: (b.get("min"), b.get("max")) for column, b in column_bounds(self.describe(),
                                                                                      self.bounded_by).items()}
        return GateChecks(bounds=bounds, nullable=[self.column(p) for p in self.nullable_parts],
                          unique=[self.column(p) for p in self.unique_parts])


def column_bounds(described: dict[str, Any], bounded_by: dict[str, tuple[str | None, str]] | None = None
                  ) -> dict[str, dict[str, float]]:
    """``{column: {"min": x, "max": y}}`` from a scorer's description: its explicit
    ``column_thresholds``, and the keys of its config dump (``thresholds``) that ``bounded_by``
    names. A nested ``{field: {"min": x, "max": y}}`` mapping in the dump bounds
    ``score_<name>_<field>`` (the metadata scorer's per-field bounds)."""
    name, thresholds = described.get("name", ""), described.get("thresholds") or {}
    bounds: dict[str, dict[str, float]] = {}

    def add(column: str, side: str, value: Any) -> None:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            bounds.setdefault(column, {})[side] = value

    for column, given in (described.get("column_thresholds") or {}).items():
        for side in ("min", "max"):
            add(column, side, (given or {}).get(side))
    for key, (part, side) in (bounded_by or {}).items():
        add(f"{SCORE_PREFIX}{name}" + (f"_{part}" if part else ""), side, thresholds.get(key))
    for key, value in thresholds.items():
        if isinstance(value, dict) and all(isinstance(v, dict) for v in value.values()):
            for part, given in value.items():
                for side in ("min", "max"):
                    add(f"{SCORE_PREFIX}{name}_{part}", side, given.get(side))
    return bounds


class GlobalScorer(Scorer):
    """A scorer whose verdict needs the whole pool (near-duplicate clusters, concept quotas):
    ``score`` runs per batch like any scorer, then ``decide`` runs once on every row that
    survived all per-row scorers, after the cascade has seen the whole pool.
    Pool-wide decisions run in ``decision_rank`` order (near-duplicates, then concept quotas,
    then a final top-k), each on what the ones before it kept."""

    decision_rank: ClassVar[int] = 0

    @abstractmethod
    def decide(self, survivors: list[dict[str, Any]]) -> tuple[Columns, list[str | None]]:
        """Columns and rejection reasons for the survivors (rows carry every score so far)."""
