"""Size and aspect ratio, from the manifest alone (ingest recorded width and height)."""

from __future__ import annotations

from typing import Any

from photogenic.config import SizeFilterConfig
from photogenic.filtering.registry import register_scorer
from photogenic.filtering.scorer import Columns, Scorer


@register_scorer
class SizeScorer(Scorer):
    name = "size"
    version = "1"
    cost_ms = 0.001
    bounded_by = {"min_short_side": ("short_side", "min"), "max_aspect_ratio": ("aspect_ratio", "max")}

    config: SizeFilterConfig

    def score(self, rows: list[dict[str, Any]], images=None) -> Columns:
        short = [min(r["width"], r["height"]) for r in rows]
        aspect = [max(r["width"], r["height"]) / max(1, min(r["width"], r["height"])) for r in rows]
        return {self.column("short_side"): short, self.column("aspect_ratio"): aspect}

    def reasons(self, columns: Columns) -> list[str | None]:
        limit_side, limit_aspect = self.config.min_short_side, self.config.max_aspect_ratio
        out: list[str | None] = []
        for short, aspect in zip(columns[self.column("short_side")], columns[self.column("aspect_ratio")]):
            if short < limit_side:
                out.append(f"short side {short} px < filter.size.min_short_side={limit_side}")
            elif aspect > limit_aspect:
                out.append(f"aspect ratio {aspect:.2f} > filter.size.max_aspect_ratio={limit_aspect}")
            else:
                out.append(None)
        return out

