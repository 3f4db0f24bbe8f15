"""Final selection: exactly filter.top_k.k candidates go to curation, the best by
filter.top_k.by (higher is better). It decides after every other scorer, concept quotas
included; a pool with fewer survivors than k keeps them all, and the log says so."""

from __future__ import annotations

import logging
import math
from typing import Any

from photogenic.config import RunConfig, TopKConfig
from photogenic.errors import ConfigError
from photogenic.filtering.registry import register_scorer
from photogenic.filtering.scorer import Columns, GateChecks, GlobalScorer, Scorer

log = logging.getLogger(__name__)


@register_scorer
class TopKScorer(GlobalScorer):
    name = "top_k"
    version = "1"
    cost_ms = 0.0
    decision_rank = 2  # last of all: exactly k of what every other scorer kept

    config: TopKConfig

    @classmethod
    def from_config(cls, config: RunConfig, check: bool = True) -> Scorer | None:
        return cls(config.filter.top_k) if config.filter.top_k.k is not None else None

    @classmethod
    def off_reason(cls, config: RunConfig) -> str | None:
        return None  # no k: every survivor goes on, the ordinary case

    def gate_checks(self) -> GateChecks:
        return GateChecks(max_rows=self.config.k)

    def score(self, rows: list[dict[str, Any]], images=None) -> Columns:
        return {}

    def reasons(self, columns: Columns) -> list[str | None]:
        count = len(next(iter(columns.values()), []))
        return [None] * count

    def decide(self, survivors: list[dict[str, Any]]) -> tuple[Columns, list[str | None]]:
        k, by = self.config.k, self.config.by
        if len(survivors) < k:
            log.warning("top_k: only %d candidates survive, fewer than filter.top_k.k=%d; all are kept",
                        len(survivors), k)
        values = [row.get(by) for row in survivors]
        if survivors and all(v is None for v in values):
            named = sorted(k for k in survivors[0] if k.startswith("score_"))
            raise ConfigError(f"filter.top_k.by={by!r} names no score the candidates carry; choose one of "
                              f"{', '.join(named)}.")
        ranked = sorted(range(len(survivors)),
                        key=lambda i: (-(values[i] if values[i] is not None else -math.inf), i))
        rank = {i: r for r, i in enumerate(ranked)}
        reasons = [None if rank[i] < k else f"not among the best {k} by {by} (filter.top_k.k={k}): rank {rank[i] + 1}"
                   for i in range(len(survivors))]
        return {self.column("rank"): [rank[i] + 1 for i in range(len(survivors))]}, reasons
