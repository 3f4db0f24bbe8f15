"""The auto-filter's funnel report: one self-contained HTML page a person can open anywhere.

Emu's paper shows its filtering as a funnel; this page shows ours, and lets a reviewer judge the
thresholds by eye before human curation spends money on the survivors:

1. a header (dataset, input rows, survivors, share kept);
2. the funnel: rows alive after each stage, their share of the input and how many each stage
   rejected, plus an "off: <why>" line for every scorer that did NOT run;
3. a histogram per numeric ``score_*`` column, over the rows that scorer saw, coloured by
   kept / rejected by this scorer / rejected by a later one, with the thresholds marked;
4. contact sheets: per rejecting scorer, the rejected images nearest its thresholds (the ones
   to look at before trusting a threshold; at random for a scorer without one), each captioned
   with its reason, and the best survivors.

Everything is inline (CSS, SVG, JPEG thumbnails as data URIs): no network, no fonts, no scripts,
so the file renders offline, as a ZenML HTML visualisation, or attached to an MLflow run.

Contract for ``scorers_described`` (the list of ``Scorer.describe()`` dicts), read per entry:

- ``name``: the scorer's name; its columns are ``score_<name>`` and ``score_<name>_<part>``.
- ``enabled``: ``False`` marks a scorer that did not run; ``why`` says why (e.g. "no CLIP
  checkpoint configured (filter.clip.model)"). It is listed under the funnel as "off: <why>".
- the thresholds drawn on the histograms are the bounds the quality gate checks, read from the
  description by ``photogenic.filtering.scorer.column_bounds``: ``column_thresholds``
  (``{column: {"min": x, "max": y}}``) and the keys of ``thresholds`` (its config dump) that
  the scorer's ``bounded_by`` names.

Cost stays bounded on large pools: histograms are computed with numpy on whole columns and only
the sampled images (at most ``sheet_size`` per sheet) are read and decoded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from photogenic.dataset.atomic import write_text
from photogenic.dataset.store import Dataset
from photogenic.filtering.cascade import REASON, REJECTED_BY, CascadeResult
from photogenic.filtering.registry import scorer_class
from photogenic.filtering.scorer import SCORE_PREFIX, column_bounds
from photogenic.htmlpage import escape, image_uri, svg

#: numeric score columns that are identifiers (perceptual hashes), not measurements: a histogram
#: of them says nothing
IDENTIFIER_SUFFIXES = ("_hash",)
DEFAULT_BEST_BY = "score_technical_quality"
BINS = 30

KEPT, REJECTED_HERE, REJECTED_LATER = "#4f9a6b", "#d0543f", "#e9b44c"
FUNNEL_BAR, THRESHOLD = "#4a78b5", "#222222"

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;background:#fafafa;
 margin:0 auto;max-width:1100px;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd}
h3{font-size:15px;margin:18px 0 6px}
.summary{color:#555}.summary b{color:#222}
.off{color:#8a4b00;margin:2px 0}.note{color:#666}
.legend span{display:inline-block;margin-right:14px}.legend i{display:inline-block;width:12px;height:12px;
 margin-right:4px;vertical-align:-1px}
.hists{display:flex;flex-wrap:wrap;gap:12px}.hist{background:#fff;border:1px solid #e3e3e3;padding:6px}
.hist h4{margin:0 0 2px;font-size:13px;font-family:ui-monospace,monospace}
svg text{font-family:system-ui,sans-serif}
.sheet{display:flex;flex-wrap:wrap;gap:8px}
figure{margin:0;background:#fff;border:1px solid #e3e3e3;padding:4px;display:flex;flex-direction:column}
figure img{display:block;object-fit:contain;background:#eee}
figcaption{font-size:11px;line-height:1.3;color:#444;overflow:hidden;display:-webkit-box;-webkit-line-clamp:2;
 -webkit-box-orient:vertical}
.placeholder{background:#ccc;color:#333;font-size:11px;overflow:hidden;padding:4px;box-sizing:border-box;
 word-break:break-word}
"""


def write_funnel_report(result: CascadeResult, dataset: Dataset, scorers_described: list[dict[str, Any]],
                        out_path: str, *, seed: int = 0, sheet_size: int = 12, thumb: int = 128,
                        best_by: str | None = None) -> str:
    """Render the report and write it atomically at ``out_path`` (a reader never sees half a
    page); return ``out_path``."""
    page = render_funnel_report(result, dataset, scorers_described, seed=seed, sheet_size=sheet_size,
                                thumb=thumb, best_by=best_by)
    write_text(out_path, page)
    return out_path


def render_funnel_report(result: CascadeResult, dataset: Dataset, scorers_described: list[dict[str, Any]], *,
                         seed: int = 0, sheet_size: int = 12, thumb: int = 128,
                         best_by: str | None = None) -> str:
    """The report as one HTML string (for tests and ZenML's HTML visualisation)."""
    table = result.table
    rejected_by = _rejected_by(table)
    kept = int(np.sum(rejected_by == None))  # noqa: E711 -- elementwise on an object array
    body = [
        _header(dataset.name, table.num_rows, kept),
        _funnel_section(result.funnel, scorers_described),
        _histogram_section(table, rejected_by, scorers_described),
        _sheets_section(table, rejected_by, dataset, result.funnel, scorers_described, seed=seed,
                        sheet_size=sheet_size,
                        thumb=thumb, best_by=best_by),
    ]
    title = escape(f"Auto-filter funnel: {dataset.name}")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f"<style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


# -- header and funnel ---------------------------------------------------------------------------
def _header(name: str, total: int, kept: int) -> str:
    return (f"<h1>Auto-filter funnel: {escape(name)}</h1>"
            f'<p class="summary"><b>{total:,}</b> input rows → <b>{kept:,}</b> survivors '
            f"(<b>{_share(kept, total)}</b> kept, {total - kept:,} rejected)</p>")


def _funnel_section(funnel: list[tuple[str, int]], described: list[dict[str, Any]]) -> str:
    off = [d for d in described if d.get("enabled") is False]
    lines = "".join(f'<p class="off">{escape(d.get("name", "?"))} — off: {escape(d.get("why", "disabled"))}</p>'
                    for d in off)
    return f"<h2>Funnel</h2>{_funnel_svg(funnel)}{lines}"


def _funnel_svg(funnel: list[tuple[str, int]]) -> str:
    """Horizontal bars, one per stage, as long as the rows alive after it (Emu's figure)."""
    if not funnel:
        return '<p class="note">The cascade recorded no funnel.</p>'
    total = funnel[0][1]
    label_w, bar_w, text_w, row_h = 150, 520, 260, 28
    width, height = label_w + bar_w + text_w, row_h * len(funnel) + 8
    parts = []
    previous = total
    for i, (stage, alive) in enumerate(funnel):
        y = 4 + i * row_h
        length = bar_w * alive / total if total else 0
        dropped = "" if i == 0 else f" · rejected {previous - alive:,}"
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 18}" text-anchor="end" font-size="13">{escape(stage)}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{length:.1f}" height="{row_h - 8}" fill="{FUNNEL_BAR}">'
            f"<title>{escape(stage)}: {alive:,} alive</title></rect>"
            f'<text x="{label_w + length + 6:.1f}" y="{y + 18}" font-size="12">'
            f"{alive:,} ({_share(alive, total)}){dropped}</text>"
        )
        previous = alive
    return svg(width, height, "".join(parts), "funnel: rows alive after each stage")


# -- histograms ----------------------------------------------------------------------------------
@dataclass
class Marker:
    label: str
    value: float


def _histogram_section(table: pa.Table, rejected_by: np.ndarray, described: list[dict[str, Any]]) -> str:
    columns = _numeric_score_columns(table)
    if not columns:
        return "<h2>Scores</h2><p class=\"note\">No numeric score columns.</p>"
    markers = _column_markers(described, columns)
    owners = _column_owners(columns, [d.get("name", "") for d in described] + _names(rejected_by))
    legend = ('<p class="legend">'
              f'<span><i style="background:{KEPT}"></i>kept</span>'
              f'<span><i style="background:{REJECTED_HERE}"></i>rejected by this scorer</span>'
              f'<span><i style="background:{REJECTED_LATER}"></i>rejected by another scorer</span>'
              f'<span><i style="background:{THRESHOLD}"></i>threshold</span></p>')
    charts = "".join(_histogram(name, table[name], rejected_by, owners.get(name), markers.get(name, []))
                     for name in columns)
    return (f"<h2>Scores</h2>{legend}<p class=\"note\">Each histogram counts the rows its scorer saw "
            f"(rows rejected before it have no score).</p><div class=\"hists\">{charts}</div>")


def _numeric_score_columns(table: pa.Table) -> list[str]:
    return [f.name for f in table.schema
            if f.name.startswith(SCORE_PREFIX) and not f.name.endswith(IDENTIFIER_SUFFIXES)
            and (pa.types.is_integer(f.type) or pa.types.is_floating(f.type))]


def _column_owners(columns: list[str], names: Iterable[str]) -> dict[str, str]:
    """Which scorer wrote each column: the longest name whose prefix matches, so a scorer named
    ``size_x`` is not mistaken for ``size``."""
    ordered = sorted({n for n in names if n}, key=len, reverse=True)
    owners = {}
    for column in columns:
        for name in ordered:
            base = SCORE_PREFIX + name
            if column == base or column.startswith(base + "_"):
                owners[column] = name
                break
    return owners


def _column_markers(described: list[dict[str, Any]], columns: list[str]) -> dict[str, list[Marker]]:
    """Threshold lines per column, from each description: the bounds the gate checks too
    (photogenic.filtering.scorer.column_bounds, with the scorer's ``bounded_by``)."""
    present = set(columns)
    markers: dict[str, list[Marker]] = {}
    for entry in described:
        scorer = scorer_class(entry.get("name", ""))
        for column, bounds in column_bounds(entry, scorer.bounded_by if scorer else None).items():
            if column not in present:
                continue
            for side in ("min", "max"):
                if side in bounds:
                    marker = Marker(f"{side} {bounds[side]:g}", float(bounds[side]))
                    if marker not in markers.setdefault(column, []):
                        markers[column].append(marker)
    return markers


def _histogram(name: str, column: pa.ChunkedArray, rejected_by: np.ndarray, owner: str | None,
               markers: list[Marker]) -> str:
    """A stacked histogram of one column's non-null, finite values, thresholds drawn over it."""
    values = column.to_numpy(zero_copy_only=False).astype(float, copy=False)
    seen = np.isfinite(values)
    values, who = values[seen], rejected_by[seen]
    if values.size == 0:
        return f'<div class="hist"><h4>{escape(name)}</h4><p class="note">no values</p></div>'
    low = min([values.min()] + [m.value for m in markers])
    high = max([values.max()] + [m.value for m in markers])
    if high <= low:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, BINS + 1)
    kept = who == None  # noqa: E711 -- elementwise on an object array
    here = (who == owner) if owner else np.zeros_like(kept)
    groups = [(KEPT, kept), (REJECTED_HERE, here), (REJECTED_LATER, ~kept & ~here)]
    counts = [(colour, np.histogram(values[mask], bins=edges)[0]) for colour, mask in groups]
    return (f'<div class="hist"><h4>{escape(name)}</h4>'
            f"{histogram_svg(edges, counts, markers, name, values.size)}</div>")


def histogram_svg(edges: np.ndarray, counts: list[tuple[str, np.ndarray]], markers: list[Marker],
                   name: str, n: int) -> str:
    width, height, left, right, top, bottom = 340, 170, 36, 10, 16, 22
    plot_w, plot_h = width - left - right, height - top - bottom
    stacked = np.cumsum([c for _, c in counts], axis=0)
    peak = max(int(stacked[-1].max()), 1)
    low, high = float(edges[0]), float(edges[-1])
    x_of = lambda v: left + plot_w * (v - low) / (high - low)  # noqa: E731
    bin_w = plot_w / (len(edges) - 1)
    parts = []
    for level, (colour, _) in enumerate(counts):
        below = stacked[level - 1] if level else np.zeros_like(stacked[0])
        for i, (start, end) in enumerate(zip(below, stacked[level])):
            if end > start:
                y0, y1 = top + plot_h * (1 - end / peak), top + plot_h * (1 - start / peak)
                parts.append(f'<rect x="{left + i * bin_w:.1f}" y="{y0:.1f}" width="{max(bin_w - 1, 0.5):.1f}" '
                             f'height="{y1 - y0:.1f}" fill="{colour}"/>')
    axis_y = top + plot_h
    parts.append(f'<line x1="{left}" y1="{axis_y}" x2="{width - right}" y2="{axis_y}" stroke="#999"/>')
    parts.append(f'<text x="{left}" y="{height - 6}" font-size="10">{low:.4g}</text>'
                 f'<text x="{width - right}" y="{height - 6}" font-size="10" text-anchor="end">{high:.4g}</text>'
                 f'<text x="{left - 4}" y="{top + 8}" font-size="10" text-anchor="end">{peak:,}</text>'
                 f'<text x="{left - 4}" y="{axis_y}" font-size="10" text-anchor="end">0</text>')
    for marker in markers:
        x = x_of(marker.value)
        parts.append(f'<line class="threshold" x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{axis_y}" '
                     f'stroke="{THRESHOLD}" stroke-width="1.5" stroke-dasharray="4 2">'
                     f"<title>{escape(marker.label)}</title></line>"
                     f'<text x="{x:.1f}" y="{top - 6}" font-size="10" text-anchor="middle">{escape(marker.label)}</text>')
    return svg(width, height, "".join(parts), f"histogram of {name} over {n:,} rows")


# -- contact sheets ------------------------------------------------------------------------------
def _sheets_section(table: pa.Table, rejected_by: np.ndarray, dataset: Dataset, funnel: list[tuple[str, int]],
                    described: list[dict[str, Any]], *, seed: int, sheet_size: int, thumb: int,
                    best_by: str | None) -> str:
    """Per rejecting scorer: the rejected rows nearest its thresholds, the ones a person should
    look at before trusting a threshold (at random for a scorer with no threshold: duplicates,
    quotas), then the best survivors."""
    rng = np.random.default_rng(seed)
    parts = ["<h2>Rejected, by scorer</h2>"]
    groups = _rejection_groups(rejected_by, [stage for stage, _ in funnel])
    if not groups:
        parts.append('<p class="note">Nothing was rejected.</p>')
    bounds = _bounds_by_scorer(described)
    for name in groups:
        index = np.flatnonzero(rejected_by == name)
        distance = _distance_past_bounds(table, index, bounds.get(name, {}))
        if distance is not None:
            chosen = index[np.argsort(distance, kind="stable")[:sheet_size]]
            how = f"the {chosen.size} nearest its thresholds"
        else:
            chosen = np.sort(rng.choice(index, size=min(sheet_size, index.size), replace=False))
            how = f"{chosen.size} at random"
        rows = table.take(pa.array(chosen, pa.int64())).to_pylist()
        captions = [(reason, reason) for reason in (row.get(REASON) or "rejected" for row in rows)]
        parts.append(f"<h3>{escape(name)}: {index.size:,} rejected, {how}</h3>"
                     f"{_sheet(dataset, rows, captions, thumb)}")
    parts.append(_best_sheet(table, rejected_by, dataset, rng, sheet_size, thumb, best_by))
    return "".join(parts)


def _bounds_by_scorer(described: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """Scorer name -> its thresholds (``{column: {"min": x, "max": y}}``), as the gate reads them."""
    found = {}
    for entry in described:
        scorer = scorer_class(entry.get("name", ""))
        found[entry.get("name", "")] = column_bounds(entry, scorer.bounded_by if scorer else None)
    return found


def _distance_past_bounds(table: pa.Table, index: np.ndarray, bounds: dict[str, dict[str, float]]
                          ) -> np.ndarray | None:
    """How far past its nearest violated threshold each row of ``index`` lies, in standard
    deviations of that column (so that bounds on different scales compare); None when the
    scorer has no threshold on a column of the table."""
    columns = [c for c in bounds if c in table.column_names]
    if not columns:
        return None
    distance = np.full(index.size, np.inf)
    for column in columns:
        values = table[column].to_numpy(zero_copy_only=False).astype(float)
        seen = values[np.isfinite(values)]
        spread = float(seen.std()) if seen.size > 1 and seen.std() > 0 else 1.0
        mine = values[index]
        for side, sign in (("min", 1.0), ("max", -1.0)):
            if side in bounds[column]:
                past = sign * (bounds[column][side] - mine) / spread  # > 0: past the bound
                distance = np.where(np.isfinite(past) & (past >= 0), np.minimum(distance, past), distance)
    return distance


def _rejection_groups(rejected_by: np.ndarray, stages: list[str]) -> list[str]:
    """Rejecting scorers in cascade order (any the funnel does not name, after them)."""
    present = set(_names(rejected_by))
    return [s for s in stages if s in present] + sorted(present - set(stages))


def _best_sheet(table: pa.Table, rejected_by: np.ndarray, dataset: Dataset, rng: np.random.Generator,
                sheet_size: int, thumb: int, best_by: str | None) -> str:
    """The highest-scoring survivors by ``best_by`` (default: technical quality), or random
    survivors when there is no such column."""
    alive = np.flatnonzero(rejected_by == None)  # noqa: E711
    column = best_by or DEFAULT_BEST_BY
    if alive.size == 0:
        return '<h2>Survivors</h2><p class="note">No survivors.</p>'
    if column in table.column_names:
        scores = table[column].to_numpy(zero_copy_only=False).astype(float)[alive]
        scores = np.where(np.isfinite(scores), scores, -np.inf)
        chosen = alive[np.argsort(-scores, kind="stable")[:sheet_size]]
        title = f"Best survivors by {column}"
    else:
        chosen = np.sort(rng.choice(alive, size=min(sheet_size, alive.size), replace=False))
        title = "Survivors at random" + (f" (no column {best_by})" if best_by else "")
    rows = table.take(pa.array(chosen, pa.int64())).to_pylist()
    captions = [_score_caption(column, row.get(column)) for row in rows]
    return f"<h2>{escape(title)}</h2>{_sheet(dataset, rows, captions, thumb)}"


def _score_caption(column: str, value: Any) -> tuple[str, str]:
    """(visible, full): the heading names the column, so a thumbnail shows only the value."""
    if not _is_number(value):
        return "kept", "kept"
    return f"{value:.3g}", f"{column} = {value:.3g}"


def _sheet(dataset: Dataset, rows: list[dict[str, Any]], captions: list[tuple[str, str]], thumb: int) -> str:
    """A grid of thumbnails; ``captions`` are (visible line, full text for the tooltip) per row."""
    cells = "".join(_cell(dataset, row, caption, thumb) for row, caption in zip(rows, captions))
    return f'<div class="sheet">{cells}</div>'


def _cell(dataset: Dataset, row: dict[str, Any], caption: tuple[str, str], thumb: int) -> str:
    """One captioned thumbnail; an image that cannot be read becomes a grey box with the error,
    because one missing shard must not cost the reviewer the whole page."""
    visible, full = caption
    title = escape(f"{full}\n{row.get('sample_id', '')}")
    try:
        picture = (f'<img src="{image_uri(dataset.load_image(row), thumb, quality=80)}" '
                   f'style="max-width:{thumb}px;max-height:{thumb}px" alt="{escape(full)}">')
    except Exception as exc:  # noqa: BLE001 -- any failure to read or decode is shown, not raised
        picture = (f'<div class="placeholder" style="width:{thumb}px;height:{thumb}px">'
                   f"image unavailable: {escape(f'{type(exc).__name__}: {exc}')}</div>")
    return (f'<figure title="{title}" style="width:{thumb}px">{picture}'
            f"<figcaption>{escape(visible)}</figcaption></figure>")


# -- small helpers -------------------------------------------------------------------------------
def _rejected_by(table: pa.Table) -> np.ndarray:
    """Who rejected each row (None for survivors), as an object array for vectorised masks."""
    if REJECTED_BY not in table.column_names:
        return np.full(table.num_rows, None, dtype=object)
    return np.asarray(table[REJECTED_BY].to_numpy(zero_copy_only=False), dtype=object)


def _names(rejected_by: np.ndarray) -> list[str]:
    return sorted(set(rejected_by.tolist()) - {None})


def _share(part: int, total: int) -> str:
    return f"{100 * part / total:.1f}%" if total else "n/a"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
