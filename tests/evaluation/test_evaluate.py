"""An evaluation end to end with two tiny random diffusers pipelines: sampling, judging, win
rates, the dataset and report it writes, MLflow, the CLI, and the human-rating round trip."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from photogenic.config import load_config
from photogenic.dataset.store import Dataset
from photogenic.errors import ConfigError, DataError
from photogenic.evaluation.evaluate import run_evaluation
from photogenic.evaluation.human import (
    VOTES_JS,
    export_human,
    human_win_rates,
    import_votes,
    read_pairs,
    record_human_results,
)
from photogenic.evaluation.prompts import write_prompts
from photogenic.evaluation.results import read_results
from photogenic.evaluation.world_prompts import sample_world_prompts
from tests.support.tiny_models import tiny_sd_pipeline

PROMPTS = 6


@pytest.fixture(autouse=True)
def mlflow_file_store(monkeypatch):
    """MLflow 3 keeps the file store (the tests' tracking URI) behind an opt-in."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return tiny_sd_pipeline(root / "model-a", seed=1), tiny_sd_pipeline(root / "model-b", seed=2)


def _config(root: Path, a: Path | str, b: Path | str, *extra: str):
    write_prompts(str(root / "data" / "prompts" / "eval.tsv"), sample_world_prompts(PROMPTS, pool_n=200))
    return load_config(None, [f"data.root={root / 'data'}", "evaluate.prompts=prompts/eval.tsv",
                              f"evaluate.candidate={a}", f"evaluate.baseline={b}",
                              "evaluate.sampling.num_inference_steps=2", "evaluate.sampling.batch_size=4",
                              "evaluate.sampling.device=cpu", "evaluate.bootstrap=200", *extra])


@pytest.fixture(scope="module")
def evaluation(models, tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluation")
    config = _config(root, *models, "evaluate.mlflow=false", "evaluate.sampling.seeds_per_prompt=2")
    return run_evaluation(config, progress=False)


def test_evaluation_dataset_results_and_report(evaluation, models):
    results = evaluation.results
    manifest = Dataset(evaluation.folder).read_manifest().to_pandas()
    # every prompt, two seeds, two models; the same seeds for both models
    assert len(manifest) == PROMPTS * 2 * 2
    seeds = manifest.pivot_table(index=["prompt_id", "replicate"], columns="model", values="seed")
    assert (seeds["candidate"] == seeds["baseline"]).all() and seeds["candidate"].nunique() == PROMPTS * 2
    # content-addressed: the sample id is the sha256 of the stored PNG bytes
    dataset = Dataset(evaluation.folder)
    import hashlib

    row = manifest.iloc[0].to_dict()
    assert hashlib.sha256(dataset.image_bytes(row)).hexdigest() == row["sample_id"]
    assert {"score_technical_quality", "score_scene_attributes"} <= set(manifest.columns)
    # different random weights make different images
    assert manifest.groupby(["prompt_id", "replicate"])["sample_id"].nunique().eq(2).all()
    table = pd.read_parquet(Path(evaluation.folder) / "win_rates.parquet")
    overall = table[table["category"] == "all"].set_index("judge")
    assert overall.loc["technical_quality", "n"] == PROMPTS * 2
    head = results["headline"]["visual_appeal"]
    assert head["judge"] == "technical_quality" and 0.0 <= head["ci_low"] <= head["win_rate"] <= head["ci_high"] <= 1
    comparisons = pd.read_parquet(Path(evaluation.folder) / "comparisons.parquet")
    recomputed = (comparisons[comparisons["judge"] == "technical_quality"]["outcome"] + 1).mean() / 2
    assert head["win_rate"] == pytest.approx(recomputed)
    assert read_results(evaluation.folder)["models"]["candidate"]["path"] == str(models[0])
    report = Path(evaluation.report).read_text()
    assert report.count("data:image/jpeg;base64,") == 2 * PROMPTS  # first seed of every prompt, A beside B
    assert "<svg" in report and "off: no feature extractor configured" in report
    assert "http://" not in report.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_missing_or_bad_models_are_clear_errors(tmp_path, models):
    with pytest.raises(ConfigError, match="evaluate.baseline"):
        run_evaluation(_config(tmp_path, models[0], "").model_copy(), progress=False)
    (tmp_path / "not-a-model").mkdir()
    with pytest.raises(DataError, match="no model_index.json"):
        run_evaluation(_config(tmp_path, models[0], tmp_path / "not-a-model"), progress=False)
    with pytest.raises(DataError, match="not in the MLflow registry"):
        run_evaluation(_config(tmp_path, models[0], "models:/nothing/3"), progress=False)


def test_cli_compare_logs_to_mlflow(tmp_path, models, monkeypatch):
    import mlflow
    from typer.testing import CliRunner

    from photogenic.cli import app

    write_prompts(str(tmp_path / "data" / "prompts" / "eval.tsv"), sample_world_prompts(3, pool_n=200))
    result = CliRunner().invoke(app, ["evaluate", "compare", str(models[0]), str(models[1]), "--quiet",
                                      "--set", f"data.root={tmp_path / 'data'}",
                                      "--set", "evaluate.prompts=prompts/eval.tsv",
                                      "--set", "evaluate.sampling.num_inference_steps=2",
                                      "--set", "evaluate.bootstrap=200"])
    assert result.exit_code == 0, result.output
    assert "visual_appeal (technical_quality): candidate vs baseline win rate" in result.output
    results = read_results(str(tmp_path / "data" / "datasets" / "evaluation"))
    run = mlflow.get_run(results["mlflow_run_id"])
    logged = run.data.metrics["technical_quality.win_rate"]
    assert logged == pytest.approx(results["headline"]["visual_appeal"]["win_rate"])
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)}
    assert {"report.html", "results.json"} <= artifacts


# -- human ratings: export, vote with real files, import ------------------------------------------


def _label_studio_export(tasks: list[dict], votes: dict[str, list[str]], criterion: str) -> list[dict]:
    """What Label Studio's JSON export holds after annotators answered the exported tasks."""
    out = []
    for i, task in enumerate(tasks):
        annotations = [{"id": 100 * i + r, "completed_by": r + 1, "was_cancelled": False, "ground_truth": False,
                        "created_at": "2026-01-01T00:00:00.000000Z", "lead_time": 3.5,
                        "result": [{"id": f"r{r}", "type": "choices", "from_name": criterion, "to_name": "left_image",
                                    "origin": "manual", "value": {"choices": [choice]}}]}
                       for r, choice in enumerate(votes[task["data"]["pair_id"]])]
        out.append({"id": i + 1, "data": task["data"], "annotations": annotations, "predictions": [],
                    "project": 1, "inner_id": i + 1})
    return out


def test_human_round_trip(evaluation, tmp_path):
    export = export_human(evaluation.folder, seed=0)
    folder = export.folder
    pairs = read_pairs(evaluation.folder)["pairs"]
    assert export.pairs == len(pairs) == PROMPTS * 2
    assert {p["left_model"] for p in pairs} == {"candidate", "baseline"}  # randomised, and recorded
    tasks = json.loads((folder / "tasks.json").read_text())
    assert all(t["data"]["left_image"].startswith("data:image/png;base64,") for t in tasks)
    config = (folder / "visual_appeal.xml").read_text()
    assert '<Choices name="visual_appeal"' in config and "$prompt" not in config
    assert "$prompt" in (folder / "text_faithfulness.xml").read_text()
    import xml.etree.ElementTree as ET

    for name in ("visual_appeal.xml", "text_faithfulness.xml"):
        ET.fromstring((folder / name).read_text())
    page = (folder / "rate_visual_appeal.html").read_text()
    assert page.count('data-choice="Tie"') == len(pairs) and "votesJSON" in page

    # three raters in Label Studio prefer the candidate's image on every pair but one; the third
    # rater disagrees on the first pairs, so majorities matter
    side = {p["pair_id"]: ("Left" if p["left_model"] == "candidate" else "Right") for p in pairs}
    other = {"Left": "Right", "Right": "Left"}
    ids = [p["pair_id"] for p in pairs]
    va = {pid: [side[pid], side[pid], other[side[pid]] if k < 3 else side[pid]] for k, pid in enumerate(ids)}
    va[ids[-1]] = [other[side[ids[-1]]]] * 2 + ["Tie"]  # the last pair: baseline by majority
    ls_file = tmp_path / "project-1-at-2026.json"
    ls_file.write_text(json.dumps(_label_studio_export(tasks, va, "visual_appeal")))
    # text faithfulness from two raters on the page (downloads written by the page's own code)
    tf_votes = {pid: ("Both" if k % 2 else side[pid]) for k, pid in enumerate(ids)}
    page_files = _page_downloads(folder, tmp_path, export.export_id, tf_votes)

    votes = import_votes(evaluation.folder, [str(ls_file), *map(str, page_files)])
    assert set(votes["rater"]) == {"user-1", "user-2", "user-3", "ana", "ben"}
    outcomes, table = human_win_rates(evaluation.folder, [str(ls_file), *map(str, page_files)], n_boot=200)
    va_out = outcomes[outcomes["criterion"] == "visual_appeal"].set_index("pair_id")
    assert (va_out["outcome"].drop(ids[-1]) == 1).all() and va_out.loc[ids[-1], "outcome"] == -1
    rows = table[table["category"] == "all"].set_index("judge")
    n = len(ids)
    assert rows.loc["human_visual_appeal", "win_rate"] == pytest.approx((n - 1) / n)
    assert rows.loc["human_text_faithfulness", "wins"] == len(ids[::2])
    assert rows.loc["human_text_faithfulness", "ties"] == len(ids[1::2])
    recorded = record_human_results(evaluation.folder, [str(ls_file), *map(str, page_files)], n_boot=200)
    assert read_results(evaluation.folder)["human"] == json.loads(json.dumps(recorded))
    assert "Human raters (majority per pair, up to 3 raters)" in Path(evaluation.report).read_text()


def _page_downloads(folder: Path, tmp_path: Path, export_id: str, votes: dict[str, str]) -> list[Path]:
    """Run the rating page's own serialisation with node when it is installed; otherwise write
    the documented format directly (the same bytes the page produces)."""
    meta = {"format": "photogenic-votes/1", "export_id": export_id, "criterion": "text_faithfulness"}
    node = shutil.which("node")
    json_file, csv_file = tmp_path / "votes-text_faithfulness-ana.json", tmp_path / "votes-text_faithfulness-ben.csv"
    if node:
        page = (folder / "rate_text_faithfulness.html").read_text()
        assert VOTES_JS in page
        script = tmp_path / "votes.js"
        script.write_text(VOTES_JS + f"\nvar meta = {json.dumps(meta)}, votes = {json.dumps(votes)};\n"
                          "var fs = require('fs');\n"
                          f"fs.writeFileSync({json.dumps(str(json_file))}, votesJSON(meta, 'ana', votes));\n"
                          f"fs.writeFileSync({json.dumps(str(csv_file))}, votesCSV(meta, 'ben', votes));\n")
        subprocess.run([node, str(script)], check=True)
    else:
        json_file.write_text(json.dumps({**meta, "rater": "ana",
                                         "votes": [{"pair_id": k, "choice": v} for k, v in sorted(votes.items())]}))
        csv_file.write_text("export_id,criterion,rater,pair_id,choice\n" + "".join(
            f"{export_id},text_faithfulness,ben,{k},{v}\n" for k, v in sorted(votes.items())))
    return [json_file, csv_file]


@pytest.mark.parametrize("content,message", [
    ("not json", "not valid JSON"),
    ('{"hello": 1}', "neither a Label Studio JSON export"),
    ('[{"data": {}}]', "has no data.pair_id"),
    ('{"format": "photogenic-votes/1", "export_id": "other", "criterion": "visual_appeal", "rater": "x", "votes": []}',
     "votes for export 'other'"),
    ('{"format": "photogenic-votes/1", "export_id": "EXPORT", "criterion": "beauty", "rater": "x", "votes": []}',
     "unknown criterion 'beauty'"),
    ('{"format": "photogenic-votes/1", "export_id": "EXPORT", "criterion": "visual_appeal", "rater": "x", '
     '"votes": [{"pair_id": "pair-99999", "choice": "Left"}]}', "pair 'pair-99999' is not in the export"),
    ('{"format": "photogenic-votes/1", "export_id": "EXPORT", "criterion": "visual_appeal", "rater": "x", '
     '"votes": [{"pair_id": "pair-00000", "choice": "Both"}]}', "choice 'Both'"),
    ('{"format": "photogenic-votes/1", "export_id": "EXPORT", "criterion": "visual_appeal", "rater": "", '
     '"votes": []}', "no rater name"),
])
def test_malformed_vote_files_are_clear_errors(evaluation, tmp_path, content, message):
    export_id = export_human(evaluation.folder, seed=0).export_id
    bad = tmp_path / "votes.json"
    bad.write_text(content.replace("EXPORT", export_id))
    with pytest.raises(DataError, match=message):
        import_votes(evaluation.folder, [str(bad)])


def test_malformed_vote_csv(evaluation, tmp_path):
    export_human(evaluation.folder, seed=0)
    bad = tmp_path / "votes.csv"
    bad.write_text("pair,choice\npair-00000,Left\n")
    with pytest.raises(DataError, match="needs the columns"):
        import_votes(evaluation.folder, [str(bad)])


@pytest.mark.browser
def test_rating_page_in_a_headless_browser(evaluation, tmp_path):
    """The page itself, in a real browser: clicks record votes, and its download imports
    (`make test-browser`, which installs Chromium; it was skipped wherever Chromium was missing,
    so a clean CI machine never ran it)."""
    import html
    import re

    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    assert browser, "no headless Chromium: `make test-browser` installs Debian's chromium"
    export = export_human(evaluation.folder, seed=0)
    page = (export.folder / "rate_visual_appeal.html").read_text()
    # a rater clicks "Left" on every pair and types a name; the page's own code serialises the votes
    clicks = """<script>
document.querySelectorAll('button[data-choice="Left"]').forEach(function (b) { b.click(); });
document.getElementById("rater").value = "cara";
var out = document.createElement("pre"); out.id = "out";
out.textContent = votesJSON(meta, document.getElementById("rater").value, votes);
document.body.appendChild(out);
</script></body>"""
    (tmp_path / "page.html").write_text(page.replace("</body>", clicks))
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                          (tmp_path / "page.html").as_uri()], capture_output=True, text=True, timeout=120).stdout
    downloaded = tmp_path / "votes-visual_appeal-cara.json"
    downloaded.write_text(html.unescape(re.search(r'<pre id="out">(.*?)</pre>', dom, re.S).group(1)))
    assert f'<span id="count">{export.pairs}</span>' in dom
    votes = import_votes(evaluation.folder, [str(downloaded)])
    assert len(votes) == export.pairs and set(votes["choice"]) == {"Left"} and set(votes["rater"]) == {"cara"}
    outcomes, _ = human_win_rates(evaluation.folder, [str(downloaded)], n_boot=200)
    lefts = {p["pair_id"]: p["left_model"] for p in read_pairs(evaluation.folder)["pairs"]}
    assert all((o == 1) == (lefts[pid] == "candidate") for pid, o in zip(outcomes["pair_id"], outcomes["outcome"]))


def test_fid_and_kid_against_a_reference_folder(models, tmp_path):
    import torch
    from PIL import Image

    class Features(torch.nn.Module):  # a random-weight stand-in for Inception's pool features
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 6, 5, stride=4)

        def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
            return torch.relu(self.conv(x / 255.0)).mean(dim=(2, 3))

    torch.manual_seed(0)
    torch.jit.script(Features()).save(str(tmp_path / "features.pt"))
    reference = tmp_path / "data" / "reference"
    reference.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(reference / f"{i}.png")
    config = _config(tmp_path, *models, "evaluate.mlflow=false", f"evaluate.fid.extractor={tmp_path / 'features.pt'}",
                     "evaluate.fid.reference=reference", "evaluate.fid.input_size=32", "evaluate.fid.kid_subset_size=4",
                     "evaluate.fid.kid_subsets=3", "evaluate.max_prompts=4")
    fid = run_evaluation(config, progress=False).results["fid"]
    assert fid["reference_images"] == 8
    for label in ("candidate", "baseline"):
        assert fid[label]["images"] == 4 and fid[label]["fid"] > 0 and np.isfinite(fid[label]["kid"])
    report = (tmp_path / "data" / "datasets" / "evaluation" / "report.html").read_text()
    assert "FID / KID against reference (8 images)" in report
    with pytest.raises(DataError, match="neither a dataset"):
        run_evaluation(config.model_copy(update={"evaluate": config.evaluate.model_copy(
            update={"fid": config.evaluate.fid.model_copy(update={"reference": "missing"})})}), progress=False)
