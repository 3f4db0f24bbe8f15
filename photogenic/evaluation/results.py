"""The files of an evaluation's dataset besides its images: the results (headline, win rates,
models, judges), the pairwise comparisons, the win-rate table and the report, named in one
place for the stage that writes them and for everything that reads them back (the report, the
promotion gate, the human round trip, the CLI)."""

from __future__ import annotations

import json
from typing import Any

from photogenic.dataset.atomic import filesystem
from photogenic.paths import join

RESULTS = "results.json"
COMPARISONS = "comparisons.parquet"
WIN_RATES = "win_rates.parquet"
REPORT = "report.html"
FORMAT = "photogenic-evaluation/1"


def read_results(folder: str) -> dict[str, Any]:
    fs, path = filesystem(join(folder, RESULTS))
    return json.loads(fs.cat_file(path))
