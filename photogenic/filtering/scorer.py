"""What a scorer is: a named, versioned, costed step of the cascade.

A scorer scores a batch of manifest rows (and their pixels, when it needs them) into columns
named ``score_<name>`` or ``score_<name>_<part>``, and says for each row whether its thresholds
reject it, and why. The cascade orders scorers by ``cost_ms`` and gives each only the rows that
survived the cheaper ones, which is where its speed comes from.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel

Columns = dict[str, list[Any]]


class Scorer(ABC):
    #: short name: the prefix of its columns and the name rejections carry
    name: ClassVar[str]
    #: bump when a change alters its scores, so recorded scores can be told apart
    version: ClassVar[str]
    #: rough cost per image in milliseconds on one CPU core, for ordering the cascade
    cost_ms: ClassVar[float]
    #: whether ``score`` needs decoded pixels; if not, it runs on manifest rows in the main process
    needs_pixels: ClassVar[bool] = False

    def __init__(self, config: BaseModel | None = None):
        #: the scorer's config section: its thresholds
        self.config = config

    def column(self, part: str | None = None) -> str:
        return f"score_{self.name}" + (f"_{part}" if part else "")

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
