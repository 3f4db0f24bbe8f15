"""Thresholds on numeric source metadata (``meta_<name>`` columns written by ingest)."""

from __future__ import annotations

from typing import Any

from photogenic.config import MetadataFilterConfig, RunConfig
from photogenic.dataset.schema import META_PREFIX
from photogenic.filtering.registry import register_scorer
from photogenic.filtering.scorer import Columns, GateChecks, Scorer


@register_scorer
class MetadataScorer(Scorer):
    name = "metadata"
    version = "1"
    # a lookup per configured field: a little more than size's two comparisons, so size runs first
    cost_ms = 0.002

    config: MetadataFilterConfig

    @classmethod
    def from_config(cls, config: RunConfig, check: bool = True) -> Scorer | None:
        settings = config.filter.metadata
        return cls(settings) if settings.thresholds else None

    @classmethod
    def off_reason(cls, config: RunConfig) -> str | None:
        return None  # no thresholds configured is the ordinary case: most sources have no such metadata

    def gate_checks(self) -> GateChecks:
        checks = super().gate_checks()
        # rows without the metadata are null here, and kept when filter.metadata.missing is keep
        checks.nullable += list(checks.bounds)
        return checks

    def score(self, rows: list[dict[str, Any]], images=None) -> Columns:
        # the values are already in the manifest: the columns record which ones were judged
        return {
            self.column(name): [row.get(f"{META_PREFIX}{name}") for row in rows] for name in self.config.thresholds
        }

    def reasons(self, columns: Columns) -> list[str | None]:
        count = len(next(iter(columns.values()), []))
        out: list[str | None] = [None] * count
        for name, bounds in self.config.thresholds.items():
            for i, value in enumerate(columns[self.column(name)]):
                if out[i] is not None:
                    continue
                if value is None:
                    if self.config.missing == "reject":
                        out[i] = f"no {name} in the source metadata (filter.metadata.missing=reject)"
                elif bounds.min is not None and value < bounds.min:
                    out[i] = f"{name} {value:g} < filter.metadata.thresholds.{name}.min={bounds.min:g}"
                elif bounds.max is not None and value > bounds.max:
                    out[i] = f"{name} {value:g} > filter.metadata.thresholds.{name}.max={bounds.max:g}"
        return out

