"""A one-page, self-contained HTML summary of a gate run, written beside GE's Data Docs.

GE's Data Docs load their styles and the index table's script from CDNs, so on a machine with no
internet (a cluster node, an air-gapped laptop) the index shows no results. This page needs
nothing outside itself: every expectation with its verdict and observed value, the dataset
numbers, and links to GE's full validation pages.
"""

from __future__ import annotations

import html
import os

SUMMARY_NAME = "gate.html"

_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em; color: #1d2433; }
h1 { font-size: 1.4em; margin-bottom: .2em; }
.verdict { display: inline-block; padding: .2em .7em; border-radius: 1em; color: white; font-weight: 600; }
.pass { background: #1a7f37; } .fail { background: #cf222e; }
table { border-collapse: collapse; margin: 1em 0; width: 100%; }
th, td { text-align: left; padding: .35em .6em; border-bottom: 1px solid #d8dee4; vertical-align: top; }
th { background: #f6f8fa; }
td.mark { width: 1.5em; font-weight: 700; }
tr.failed td { background: #fff1f0; }
code { font-size: 12.5px; }
.muted { color: #57606a; }
"""


def render_summary(kind: str, success: bool, suites: dict[str, list[tuple[bool, str, str]]],
                   dataset: dict[str, float], validation_pages: list[str]) -> str:
    verdict = '<span class="verdict pass">passed</span>' if success else '<span class="verdict fail">failed</span>'
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(kind)} quality gate</title><style>{_STYLE}</style></head><body>",
        f"<h1>Quality gate: {html.escape(kind)} {verdict}</h1>",
        "<p class='muted'>" + ", ".join(
            f"{html.escape(str(k))}: {_number(v)}" for k, v in dataset.items()) + "</p>",
    ]
    failures = [(suite, row) for suite, rows in suites.items() for row in rows if not row[0]]
    if failures:  # what stopped the pipeline comes first, whichever suite it is in
        parts.append("<h2>Not met</h2><table><tr><th></th><th>suite</th><th>expectation</th><th>observed</th></tr>")
        parts += [
            f"<tr class='failed'><td class='mark'>✗</td><td>{html.escape(suite)}</td>"
            f"<td><code>{html.escape(expectation)}</code></td><td>{html.escape(observed)}</td></tr>"
            for suite, (_, expectation, observed) in failures
        ]
        parts.append("</table>")
    for suite, rows in suites.items():
        failed = sum(1 for ok, _, _ in rows if not ok)
        parts.append(f"<h2>{html.escape(suite)} <span class='muted'>({len(rows) - failed} of {len(rows)} met)</span></h2>")
        parts.append("<table><tr><th></th><th>expectation</th><th>observed</th></tr>")
        for ok, expectation, observed in sorted(rows, key=lambda row: row[0]):  # failures first
            parts.append(
                f"<tr class='{'passed' if ok else 'failed'}'><td class='mark'>{'✓' if ok else '✗'}</td>"
                f"<td><code>{html.escape(expectation)}</code></td><td>{html.escape(observed)}</td></tr>"
            )
        parts.append("</table>")
    if validation_pages:
        parts.append("<h2>Great Expectations Data Docs</h2><ul>")
        parts.append("<li><a href='index.html'>index</a></li>")
        parts += [f"<li><a href='{html.escape(page)}'>{html.escape(page)}</a></li>" for page in validation_pages]
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def validation_pages(site_dir: str) -> list[str]:
    """GE's validation result pages in a built site, relative to it."""
    root = os.path.join(site_dir, "validations")
    pages = [
        os.path.relpath(os.path.join(folder, name), site_dir)
        for folder, _, names in os.walk(root) for name in names if name.endswith(".html")
    ]
    return sorted(pages)


def _number(value: float) -> str:
    return f"{value:.2%}" if isinstance(value, float) and 0 <= value <= 1 and value != int(value) else str(value)
