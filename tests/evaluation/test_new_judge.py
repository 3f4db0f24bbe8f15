"""A judge added in one file: a toy judge defined here, registered as its module would, is built
from ``evaluate.judges``, scores both models' images, and gets its win rates, its column in the
evaluation dataset and its line in the report, with nothing else changed."""

import numpy as np
import pandas as pd
import pytest

from photogenic.evaluation.evaluate import run_evaluation
from photogenic.evaluation.judges import registry
from photogenic.evaluation.judges.registry import VISUAL_APPEAL, tie_margin
from tests.evaluation.test_evaluate import _config, models  # noqa: F401 - the module's tiny models


class BrightnessJudge:
    """Brighter is better: a stand-in for any visual-appeal model."""

    name, criterion = "toy_brightness", VISUAL_APPEAL

    def __init__(self, margin: float):
        self.tie_margin = margin

    def score(self, images, prompts):
        return [float(np.asarray(image.convert("L")).mean()) / 255 for image in images]


@pytest.fixture
def toy(monkeypatch):
    registry.known_judges()  # the project's own first, as a run would find them
    monkeypatch.setitem(registry.JUDGES, "toy_brightness",
                        lambda settings: BrightnessJudge(tie_margin(settings, "toy_brightness", 0.001)))


def test_a_judge_in_one_file_is_built_scores_and_reports(toy, models, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    config = _config(tmp_path, *models, "evaluate.mlflow=false", "evaluate.max_prompts=3",
                     "evaluate.judges.visual_appeal=[toy_brightness,technical_quality]",
                     "evaluate.judges.text_faithfulness=[]")
    result = run_evaluation(config, progress=False)
    manifest = pd.read_parquet(f"{result.folder}/manifest.parquet")
    assert manifest["score_toy_brightness"].between(0, 1).all()
    table = pd.read_parquet(f"{result.folder}/win_rates.parquet").set_index(["judge", "category"])
    assert table.loc[("toy_brightness", "all"), "n"] == 3
    # the first visual-appeal judge is the headline
    assert result.results["headline"]["visual_appeal"]["judge"] == "toy_brightness"
    assert "toy_brightness" in open(result.report, encoding="utf-8").read()
