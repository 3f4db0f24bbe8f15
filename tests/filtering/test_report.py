"""The auto-filter's funnel report: a self-contained HTML page built from a real cascade run."""

import html
import re

import pyarrow as pa
import pytest

from photogenic.dataset.store import Dataset
from photogenic.filtering.cascade import REJECTED_BY, CascadeResult, run_cascade
from photogenic.filtering.report import render_funnel_report, write_funnel_report
from photogenic.filtering.scorers.size import SizeScorer
from photogenic.stages.ingest import ingest
from tests.conftest import config_for, image_bytes, wds_members, write_tar

SIZES = [(64, 48), (300, 200), (900, 200), (256, 256), (100, 400), (320, 240), (200, 200)]
CLIP_OFF = {"name": "clip", "enabled": False, "why": "no CLIP checkpoint configured (filter.clip.model)"}


@pytest.fixture
def filtered(tmp_path):
    """A real ingested dataset and the size scorer's cascade over it: 3 of 7 rows rejected."""
    root = tmp_path / "data"
    members = []
    for key, size in enumerate(SIZES):
        members += wds_members(f"{key:09d}", image_bytes(size, seed=key), f"photo {key}")
    write_tar(root / "raw" / "p.tar", members)
    config = config_for(root, "ingest.sources.0.uri=raw/p.tar")
    ingest(config, progress=False)
    dataset = Dataset(str(root / "datasets" / "ingested"))
    scorer = SizeScorer(config.filter.size)
    result = run_cascade(dataset, [scorer], workers=0, progress=False)
    return result, dataset, [scorer.describe(), CLIP_OFF]


def test_report_shows_funnel_scores_thresholds_and_rejections(filtered, tmp_path):
    result, dataset, described = filtered
    out = str(tmp_path / "reports" / "funnel.html")
    assert write_funnel_report(result, dataset, described, out, sheet_size=2) == out
    page = open(out, encoding="utf-8").read()
    assert result.funnel == [("input", 7), ("size", 4)]
    assert ">input</text>" in page and ">size</text>" in page
    assert "7 (100.0%)" in page and "4 (57.1%) · rejected 3" in page
    assert "clip — off: no CLIP checkpoint configured (filter.clip.model)" in page
    # one histogram per numeric score column, the size thresholds drawn on them
    for column in ("score_size_short_side", "score_size_aspect_ratio"):
        assert re.search(rf"<h4>{column}</h4><svg", page)
    assert "<title>min 128</title>" in page and "<title>max 3</title>" in page
    # the size sheet: at most sheet_size thumbnails, captioned with escaped reasons
    assert "size: 3 rejected, the 2 nearest its thresholds" in page
    assert page.count("data:image/jpeg;base64,") == 2 + 2  # the rejection sheet + the best survivors
    reasons = [r for r in result.table[result.table.column_names.index("filter_reason")].to_pylist() if r]
    assert sum(html.escape(r) in page for r in reasons) == 2
    assert "&lt; filter.size.min_short_side=128" in page
    assert "http://" not in page and "https://" not in page
    assert not [p for p in (tmp_path / "reports").iterdir() if p.name != "funnel.html"]  # no temporaries left


def test_each_scorer_shows_the_rejects_nearest_its_thresholds(filtered):
    """A 100x400 image (short side 100 < 128) and a 900x200 banner (aspect 4.5 > 3) lie nearer
    the size thresholds, in standard deviations of their columns, than a 64x48 thumbnail."""
    result, dataset, described = filtered
    page = render_funnel_report(result, dataset, described, sheet_size=2)
    assert html.escape("short side 100 px < filter.size.min_short_side=128") in page
    assert html.escape("aspect ratio 4.50 > filter.size.max_aspect_ratio=3.0") in page
    assert "short side 48 px" not in page
    # a scorer without thresholds (here one the descriptions do not name) is sampled at random
    table = result.table.set_column(result.table.schema.get_field_index(REJECTED_BY), REJECTED_BY,
                                    pa.array(["other" if r else None for r in result.table[REJECTED_BY].to_pylist()]))
    page = render_funnel_report(CascadeResult(table=table, funnel=result.funnel), dataset, described, sheet_size=2)
    assert "other: 3 rejected, 2 at random" in page


def test_sampling_is_deterministic_given_the_seed(filtered):
    result, dataset, described = filtered
    pages = {render_funnel_report(result, dataset, described, seed=s, sheet_size=1) for s in (3, 3)}
    assert len(pages) == 1


def test_best_survivors_follow_the_chosen_column(filtered):
    result, dataset, described = filtered
    page = render_funnel_report(result, dataset, described, best_by="score_size_short_side", sheet_size=2)
    assert "Best survivors by score_size_short_side" in page
    assert page.index("score_size_short_side = 256") < page.index("score_size_short_side = 240")


def test_custom_column_thresholds_are_drawn(filtered):
    result, dataset, described = filtered
    custom = {"name": "size", "column_thresholds": {"score_size_short_side": {"min": 150, "max": 400}}}
    page = render_funnel_report(result, dataset, [custom])
    assert "<title>min 150</title>" in page and "<title>max 400</title>" in page


def test_result_without_rejections_renders(filtered):
    result, dataset, described = filtered
    survivors = result.survivors
    page = render_funnel_report(CascadeResult(table=survivors, funnel=[("input", 4), ("size", 4)]), dataset, described)
    assert "Nothing was rejected." in page and "4 (100.0%) · rejected 0" in page


def test_empty_result_renders(filtered):
    result, dataset, described = filtered
    empty = CascadeResult(table=result.table.slice(0, 0), funnel=[("input", 0), ("size", 0)])
    page = render_funnel_report(empty, dataset, described)
    assert "<b>0</b> input rows" in page and "No survivors." in page
    bare = CascadeResult(table=pa.table({"sample_id": pa.array([], pa.string())}))
    assert "The cascade recorded no funnel." in render_funnel_report(bare, dataset, [])


def test_unreadable_image_becomes_a_placeholder(filtered):
    result, dataset, described = filtered
    table = result.table
    shard = table.schema.get_field_index("shard")
    broken = table.set_column(shard, "shard", pa.array(["shards/missing.tar"] * table.num_rows, pa.string()))
    page = render_funnel_report(CascadeResult(table=broken, funnel=result.funnel), dataset, described)
    assert "data:image/jpeg;base64," not in page
    assert page.count('class="placeholder"') == table.num_rows  # 3 rejected + 4 survivors
    assert "image unavailable:" in page and "missing.tar" in page


def test_rejected_rows_are_grouped_by_scorer(filtered):
    result, dataset, described = filtered
    table = result.table
    rejected = [i for i, w in enumerate(table[REJECTED_BY].to_pylist()) if w]
    relabelled = [None] * table.num_rows
    for n, i in enumerate(rejected):
        relabelled[i] = "other" if n == 0 else "size"
    table = table.set_column(table.schema.get_field_index(REJECTED_BY), REJECTED_BY, pa.array(relabelled))
    page = render_funnel_report(CascadeResult(table=table, funnel=result.funnel), dataset, described)
    assert "size: 2 rejected" in page and "other: 1 rejected" in page
    assert page.index("size: ") < page.index("other: ")  # cascade stages first
