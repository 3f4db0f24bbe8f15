"""A scorer added in one file: a toy scorer defined here, with its config section, and nothing
else changed, takes its place in the cascade, the funnel and its report, the dataset card, the
quality gate, and the config every runner hands the stage (a ZenML step's parameters, a KFP
task's config file)."""

import json
from io import BytesIO

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image
from pydantic import BaseModel, ConfigDict

import photogenic.config as config_module
from photogenic.dataset.store import Dataset
from photogenic.errors import ConfigError, QualityGateError
from photogenic.filtering import registry
from photogenic.filtering.scorer import Columns, Scorer
from photogenic.stages.auto_filter import REJECTED, auto_filter
from photogenic.stages.ingest import ingest
from photogenic.stages.runner import check_output, stage_config
from tests.conftest import config_for, wds_members, write_tar


class RedSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = False
    max_red: float = 0.5


class RedShareScorer(Scorer):
    """The share of strongly red pixels; too much red is rejected."""

    name, version, cost_ms, needs_pixels = "toy_red", "1", 1.0, True
    bounded_by = {"max_red": (None, "max")}

    def score(self, rows, images) -> Columns:
        shares = []
        for image in images:
            rgb = image.astype(int)
            shares.append(float(((rgb[..., 0] > 150) & (rgb[..., 1] < 100) & (rgb[..., 2] < 100)).mean()))
        return {self.column(): shares}

    def reasons(self, columns: Columns):
        limit = self.config.max_red
        return [f"red covers {v:.0%} > filter.toy_red.max_red={limit}" if v > limit else None
                for v in columns[self.column()]]


@pytest.fixture
def toy(monkeypatch):
    """The scorer and its section, registered as its module would at import, for this test only."""
    monkeypatch.setitem(config_module._EXTRA_FILTER_SECTIONS, "toy_red", RedSettings)
    monkeypatch.setitem(registry._SCORERS, "toy_red", RedShareScorer)
    return RedShareScorer


def _pool(root, red_shares):
    """Pictures whose top rows are red, the rest blue, in the given shares."""
    members = []
    for key, share in enumerate(red_shares):
        picture = np.zeros((160, 200, 3), np.uint8)
        picture[:] = (30, 120, 220)
        picture[: round(160 * share)] = (220, 30, 30)
        buffer = BytesIO()
        Image.fromarray(picture).save(buffer, "PNG")
        members += wds_members(f"{key:09d}", buffer.getvalue(), f"picture {key}", ext="png")
    write_tar(root / "raw" / "p.tar", members)


def _config(root, *overrides):
    return config_for(root, "ingest.sources.0.uri=raw/p.tar", "filter.technical.enabled=false",
                      "filter.ocr.enabled=false", "filter.nsfw.enabled=false", "filter.dedup.enabled=false",
                      *overrides)


def test_a_scorer_in_one_file_runs_in_the_cascade_the_report_the_card_and_the_gate(toy, tmp_path):
    root = tmp_path / "data"
    _pool(root, [0.9, 0.1, 0.75, 0.3])
    config = _config(root, "filter.toy_red.enabled=true", "filter.toy_red.max_red=0.4")
    assert [s.name for s in registry.build_scorers(config)] == ["size", "toy_red", "concept"]
    ingest(config, progress=False)

    result = auto_filter(config, progress=False)
    assert result.funnel == [("input", 4), ("size", 4), ("toy_red", 2), ("concept", 2)]
    rejected = pq.read_table(f"{result.ref.path}/{REJECTED}").to_pylist()
    assert {r["filter_rejected_by"] for r in rejected} == {"toy_red"}
    assert all("filter.toy_red.max_red=0.4" in r["filter_reason"] for r in rejected)
    card = Dataset(result.ref.path).read_card()
    assert "toy_red" in [s["name"] for s in card["scorers"]] and card["params"]["toy_red"]["max_red"] == 0.4
    page = open(result.report, encoding="utf-8").read()
    assert "<h4>score_toy_red</h4>" in page and "<title>max 0.4</title>" in page and "toy_red: 2 rejected" in page

    # the gate checks the scorer's own bound on the survivors: one over it fails the gate
    assert check_output("auto_filter", result.ref, config).success
    strict = _config(root, "filter.toy_red.enabled=true", "filter.toy_red.max_red=0.2")
    with pytest.raises(QualityGateError, match="score_toy_red"):
        check_output("auto_filter", result.ref, strict)

    # off, it says why, in the funnel report and the card
    off = registry.scorers_off(_config(root))
    assert {"name": "toy_red", "enabled": False, "why": "disabled (filter.toy_red.enabled=false)"} in off


def test_its_section_is_validated_and_reaches_the_steps(toy, tmp_path):
    with pytest.raises(ConfigError, match=r"filter\.toy_red\.max_red"):
        _config(tmp_path, "filter.toy_red.max_red=lots")
    with pytest.raises(ConfigError, match=r"unknown key filter\.toy_blue"):
        _config(tmp_path, "filter.toy_blue.enabled=true")
    resolved = _config(tmp_path, "filter.toy_red.enabled=true").resolved()
    # the ZenML step's parameters (its cache key) and a KFP task's config carry the section
    assert stage_config("auto_filter", resolved)["filter"]["toy_red"] == {"enabled": True, "max_red": 0.5}
    assert json.loads(json.dumps(resolved))["filter"]["toy_red"]["enabled"] is True
