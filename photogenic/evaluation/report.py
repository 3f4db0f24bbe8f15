"""The evaluation report: one self-contained HTML page per evaluation.

Sections: the headline (per criterion, the first judge's win rate of A over B with its
interval); win-rate bars per judge and prompt category (win / tie / loss shares stacked, the
tie-split win rate as a dot with its interval, the 50% parity line); FID/KID when measured;
training curves of both models, pulled from their MLflow training runs when the registry knows
them; the lineage of both models (registry name, version, tags, run parameters); and an image
grid, one row per prompt with A's and B's images side by side and every judge's scores.

Everything is inline (CSS, SVG plots, JPEG thumbnails as data URIs): no network, no scripts, so
it renders offline, as the ZenML step's HTML visualisation, or as an MLflow artifact.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from photogenic.dataset.atomic import write_text
from photogenic.dataset.store import Dataset
from photogenic.evaluation.comparisons import ALL
from photogenic.evaluation.models import run_params, training_curves
from photogenic.evaluation.results import REPORT, WIN_RATES, read_results
from photogenic.evaluation.sampling import decode_png
from photogenic.htmlpage import escape, image_uri, svg
from photogenic.paths import join

WIN, TIE, LOSS = "#4f9a6b", "#b9b9b9", "#d0543f"
COLOURS = ("#4a78b5", "#e08a2c")
CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;background:#fafafa;
 margin:0 auto;max-width:1150px;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd}
.note{color:#666}.cards{display:flex;gap:12px;flex-wrap:wrap}
.card{background:#fff;border:1px solid #e3e3e3;padding:10px 14px;min-width:260px}
.card b{font-size:26px}.off{color:#8a4b00}
table{border-collapse:collapse;background:#fff}td,th{border:1px solid #e3e3e3;padding:3px 7px;font-size:12px;
 text-align:left;vertical-align:top}
.pair{display:flex;gap:10px;align-items:flex-start;background:#fff;border:1px solid #e3e3e3;padding:6px;margin:6px 0}
.pair figure{margin:0}.pair img{display:block;width:160px;height:160px;object-fit:contain;background:#eee}
.pair figcaption{font-size:11px;color:#444;width:160px}.prompt{font-size:12px;max-width:520px}
.won{outline:3px solid #4f9a6b}
.curves{display:flex;flex-wrap:wrap;gap:10px}
"""


def write_report(path: str, results: dict[str, Any], dataset: Dataset, samples: pd.DataFrame,
                 table: pd.DataFrame, max_prompts: int = 60) -> str:
    write_text(path, render_report(results, dataset, samples, table, max_prompts=max_prompts))
    return path


def render_report(results: dict[str, Any], dataset: Dataset, samples: pd.DataFrame, table: pd.DataFrame,
                  max_prompts: int = 60) -> str:
    a, b = results["model_a"], results["model_b"]
    parts = [
        f"<h1>Evaluation: {escape(a)} vs {escape(b)}</h1>",
        f"<p class=note>{results['prompts']['count']} prompts from {escape(results['prompts']['path'])}, "
        f"{results['sampling']['seeds_per_prompt']} seed(s) each, {results['sampling']['num_inference_steps']} steps, "
        f"guidance {results['sampling']['guidance_scale']}, scheduler {escape(results['sampling']['scheduler'])}; "
        f"created {escape(results['created'])}. Win rate = (wins + ties/2) / comparisons; interval: "
        f"{round(100 * (table['level'].iloc[0] if len(table) else 0.95))}% bootstrap; p: sign test.</p>",
        _headline(results, a),
        "<h2>Win rates per judge and prompt category</h2>",
        f"<p class=note>Bars: share of comparisons {escape(a)} won (green), tied (grey), lost (red). "
        "Dot and whisker: the win rate and its interval; the line marks parity (50%).</p>",
        _winrate_svg(table),
        _winrate_table(table),
        _human_section(results),
        _judge_cards_section(results),
        _fid_section(results),
        _curves_section(results),
        _lineage_section(results),
        f"<h2>Images: {escape(a)} (left) beside {escape(b)} (right)</h2>",
        _grid(dataset, samples, results, max_prompts),
    ]
    return (f"<!doctype html><html><head><meta charset=utf-8><title>Evaluation {escape(a)} vs {escape(b)}</title>"
            f"<style>{CSS}</style></head><body>{''.join(parts)}</body></html>")


def _headline(results: dict[str, Any], a: str) -> str:
    cards = []
    for criterion, row in results["headline"].items():
        cards.append(f"<div class=card>{escape(criterion.replace('_', ' '))} ({escape(row['judge'])})<br>"
                     f"<b>{_pct(row['win_rate'])}</b> [{_pct(row['ci_low'])}, {_pct(row['ci_high'])}]<br>"
                     f"{escape(a)} won {row['wins']}, tied {row['ties']}, lost {row['losses']} of {row['n']}; "
                     f"p = {row['p_value']:.3g}</div>")
    return f"<div class=cards>{''.join(cards) or '<p class=off>no judge produced a comparison</p>'}</div>"


def _winrate_svg(table: pd.DataFrame) -> str:
    if table.empty:
        return "<p class=off>no comparisons</p>"
    label_w, bar_w, row_h = 260, 560, 20
    height = row_h * len(table) + 30
    x0 = label_w
    out = []
    for i, row in enumerate(table.itertuples()):
        y = 10 + i * row_h
        label = f"{row.judge} · {row.category}"
        weight = "bold" if row.category == ALL else "normal"
        out.append(f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end" font-size="11" '
                   f'font-weight="{weight}">{escape(label)} (n={row.n})</text>')
        x = x0
        for share, colour in ((row.win_share, WIN), (row.tie_share, TIE), (row.loss_share, LOSS)):
            w = bar_w * (share if share == share else 0)
            out.append(f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" fill="{colour}"/>')
            x += w
        if row.win_rate == row.win_rate:
            lo, hi, mid = (x0 + bar_w * v for v in (row.ci_low, row.ci_high, row.win_rate))
            out.append(f'<line x1="{lo:.1f}" x2="{hi:.1f}" y1="{y + 10}" y2="{y + 10}" stroke="#111" stroke-width="2"/>'
                       f'<circle cx="{mid:.1f}" cy="{y + 10}" r="4" fill="#111"/>')
    mid = x0 + bar_w / 2
    out.append(f'<line x1="{mid}" x2="{mid}" y1="5" y2="{height - 18}" stroke="#333" stroke-dasharray="4 3"/>')
    for tick in (0, 0.25, 0.5, 0.75, 1.0):
        out.append(f'<text x="{x0 + bar_w * tick:.0f}" y="{height - 4}" font-size="10" text-anchor="middle">'
                   f'{int(tick * 100)}%</text>')
    return svg(label_w + bar_w + 20, height, "".join(out), "win rates")


def _winrate_table(table: pd.DataFrame) -> str:
    head = "<tr><th>judge</th><th>category</th><th>n</th><th>win</th><th>tie</th><th>loss</th><th>win rate</th>" \
           "<th>interval</th><th>p (sign test)</th></tr>"
    body = "".join(
        f"<tr><td>{escape(r.judge)}</td><td>{escape(r.category)}</td><td>{r.n}</td><td>{r.wins}</td><td>{r.ties}</td>"
        f"<td>{r.losses}</td><td>{_pct(r.win_rate)}</td><td>[{_pct(r.ci_low)}, {_pct(r.ci_high)}]</td>"
        f"<td>{r.p_value:.3g}</td></tr>" for r in table.itertuples())
    return f"<details><summary>table</summary><table>{head}{body}</table></details>"


def _human_section(results: dict[str, Any]) -> str:
    human = results.get("human")
    if not human:
        return ("<h2>Human raters</h2><p class=off>off: no votes imported yet (photogenic evaluate export-human, "
                "then import-human)</p>")
    table = pd.DataFrame(human["win_rates"])
    return (f"<h2>Human raters (majority per pair, up to {human.get('max_raters_per_pair', '?')} raters)</h2>"
            f"{_winrate_svg(table)}{_winrate_table(table)}")


def rerender_report(folder: str) -> str:
    """Write the report of an evaluation folder again from its files (after votes are imported)."""
    dataset = Dataset(folder)
    table = pd.read_parquet(join(folder, WIN_RATES))
    return write_report(join(folder, REPORT), read_results(folder), dataset, dataset.read_manifest().to_pandas(), table)


def _fid_section(results: dict[str, Any]) -> str:
    fid = results.get("fid")
    if not fid:
        return f"<h2>FID / KID</h2><p class=off>off: {escape(results.get('fid_off') or 'not measured')}</p>"
    rows = "".join(f"<tr><td>{escape(label)}</td><td>{v['fid']:.3f}</td><td>{v['kid']:.5f} ± {v['kid_std']:.5f}</td>"
                   f"<td>{v['images']}</td></tr>" for label, v in fid.items() if isinstance(v, dict))
    return (f"<h2>FID / KID against {escape(fid['reference'])} ({fid['reference_images']} images)</h2>"
            f"<table><tr><th>model</th><th>FID</th><th>KID</th><th>images</th></tr>{rows}</table>")


def _curves_section(results: dict[str, Any]) -> str:
    curves = {label: training_curves(m.get("run_id")) for label, m in results["models"].items()}
    if not any(curves.values()):
        return ("<h2>Training curves</h2><p class=off>off: neither model has a known MLflow training run "
                "(name them as models:/name/version to pull their curves)</p>")
    metrics = sorted({k for c in curves.values() for k in c})
    plots = []
    for metric in metrics:
        series = [(label, c[metric]) for label, c in curves.items() if c.get(metric)]
        plots.append(_line_svg(metric, series))
    return f"<h2>Training curves</h2><div class=curves>{''.join(plots)}</div>"


def _line_svg(title: str, series: list[tuple[str, list[tuple[int, float]]]]) -> str:
    w, h, pad = 340, 200, 36
    xs = [s for _, pts in series for s, _ in pts]
    ys = [v for _, pts in series for _, v in pts]
    x_lo, x_hi = min(xs), max(xs) or 1
    y_lo, y_hi = min(ys), max(ys)
    if y_hi == y_lo:
        y_hi = y_lo + 1.0
    sx = lambda x: pad + (w - pad - 10) * ((x - x_lo) / ((x_hi - x_lo) or 1))  # noqa: E731
    sy = lambda y: h - pad + (pad + 10 - h) * ((y - y_lo) / (y_hi - y_lo))  # noqa: E731
    out = [f'<text x="{w / 2}" y="14" text-anchor="middle" font-size="12">{escape(title)}</text>',
           f'<text x="4" y="{sy(y_hi) + 4:.0f}" font-size="9">{y_hi:.3g}</text>',
           f'<text x="4" y="{sy(y_lo):.0f}" font-size="9">{y_lo:.3g}</text>',
           f'<text x="{pad}" y="{h - 18}" font-size="9">step {x_lo}</text>',
           f'<text x="{w - 10}" y="{h - 18}" font-size="9" text-anchor="end">{x_hi}</text>']
    for i, (label, pts) in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        path = " ".join(f"{sx(s):.1f},{sy(v):.1f}" for s, v in pts)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.5"/>'
                   f'<text x="{pad + 90 * i}" y="{h - 4}" font-size="10" fill="{colour}">{escape(label)}</text>')
    return svg(w, h, "".join(out), title)


def _lineage_section(results: dict[str, Any]) -> str:
    rows = []
    for label, m in results["models"].items():
        tags = "<br>".join(f"{escape(k)} = {escape(v)}" for k, v in sorted(m.get("tags", {}).items())) or "—"
        params = run_params(m.get("run_id"))
        shown = "<br>".join(f"{escape(k)} = {escape(v)}" for k, v in sorted(params.items())[:25]) or "—"
        registry = f"{escape(m['registered_name'])} v{escape(m['version'])}" if m.get("registered_name") else "not registered"
        rows.append(f"<tr><td><b>{escape(label)}</b></td><td>{escape(m['spec'])}<br><span class=note>{escape(m['path'])}</span>"
                    f"</td><td>{registry}</td><td>{escape(m.get('run_id') or '—')}</td><td>{tags}</td>"
                    f"<td>{shown}</td></tr>")
    return ("<h2>Lineage</h2><table><tr><th>model</th><th>spec / folder</th><th>registry</th><th>training run</th>"
            f"<th>model version tags</th><th>run parameters</th></tr>{''.join(rows)}</table>")


def _grid(dataset: Dataset, samples: pd.DataFrame, results: dict[str, Any], max_prompts: int) -> str:
    a, b = results["model_a"], results["model_b"]
    judges = [j["name"] for j in results["judges"]]
    margins = {j["name"]: j["tie_margin"] for j in results["judges"]}
    first = samples[samples["replicate"] == 0]
    by_model = {m: f.set_index("prompt_id") for m, f in first.groupby("model")}
    if a not in by_model or b not in by_model:
        return ""
    prompt_ids = list(dict.fromkeys(first["prompt_id"]))[:max_prompts]
    out = []
    for pid in prompt_ids:
        ra, rb = by_model[a].loc[pid], by_model[b].loc[pid]
        primary = judges[0] if judges else None
        won_a = primary and ra[f"score_{primary}"] - rb[f"score_{primary}"] > margins[primary]
        won_b = primary and rb[f"score_{primary}"] - ra[f"score_{primary}"] > margins[primary]
        cells = []
        for row, label, won in ((ra, a, won_a), (rb, b, won_b)):
            scores = " · ".join(f"{j} {row[f'score_{j}']:.3g}" for j in judges)
            cells.append(f"<figure><img class='{'won' if won else ''}' src='{_thumb(dataset, row)}' alt=''>"
                         f"<figcaption><b>{escape(label)}</b> {escape(scores)}</figcaption></figure>")
        out.append(f"<div class=pair>{''.join(cells)}<div class=prompt><b>{escape(ra['category'])}</b> · "
                   f"seed {int(ra['seed'])}<br>{escape(ra['prompt'])}</div></div>")
    more = len(dict.fromkeys(first["prompt_id"])) - len(prompt_ids)
    note = f"<p class=note>{more} more prompts in the evaluation dataset.</p>" if more > 0 else ""
    return "".join(out) + note


def _judge_cards_section(results: dict[str, Any]) -> str:
    """What the judges that learnt were trained on and how well they agree with the truth."""
    cards = results.get("judge_cards") or {}
    panel = cards.get("rater_panel")
    if not panel:
        return ""
    held = panel["held_out"]
    aucs = ", ".join(f"{auc:.3f}" for auc in held["member_auc"])
    missed = ", ".join(f"{escape(k)} {_pct(v)}" for k, v in held["rejected_per_problem"].items())
    return ("<h2>The rater panel</h2><p class=note>Simulated raters, a stand-in for people trained on the sample "
            f"world's ground truth ({panel['training_pictures']} pictures), not the auto-filter; the caption is "
            "hidden from them. Each votes A, B or tie, the pair goes by the majority. On "
            f"{held['pictures']} held-out pictures no member saw: ROC AUC per member {aucs}; the majority's "
            f"accuracy {_pct(held['majority_accuracy'])}; the share it rejects of the pictures with each "
            f"problem: {missed}.</p>")


def _thumb(dataset: Dataset, row: Any, side: int = 160) -> str:
    image = decode_png(dataset.image_bytes({"shard": row["shard"], "offset": row["offset"], "length": row["length"]}))
    return image_uri(image, side, enlarge=True)


def _pct(value: float) -> str:
    return "—" if value is None or value != value else f"{100 * value:.1f}%"
