"""Emu's ablations on tiny settings: every arm tuned from the same pretrained model on as many
rows as the curated set (or fewer, for the size arms), every comparison judged on the same
prompts and seeds, the summary page and MLflow runs written, and the command prints them."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pyarrow.parquet as pq
from typer.testing import CliRunner

from photogenic.cli.app import app
from photogenic.config import dump_config, load_config
from photogenic.evaluation.ablation import EXPERIMENT, arm_rows, run_ablation, win_rate
from tests.support.training_fixtures import tiny_overrides, tiny_recipe_overrides, write_dataset


def _config(root):
    write_dataset(root, "ingested", n=30)
    write_dataset(root, "candidates", n=30)
    write_dataset(root, "training_set", n=12, split=True)  # 10 training rows, 2 validation
    overrides = tiny_overrides(root, "pretrain") + tiny_recipe_overrides(root) + [
        "evaluate.max_prompts=3", "evaluate.judges.text_faithfulness=[scene_attributes]"]
    return load_config(None, overrides)


def test_the_arms_have_the_curated_sets_size_and_share_no_row_with_it(tmp_path):
    config = _config(tmp_path)
    arms = arm_rows(config, sizes=(4, 50), seed=0)
    assert set(arms) == {"curated", "random", "candidates", "curated-4"}  # 50 is not below the 10 curated rows
    curated = set(arms["curated"][1]["sample_id"].to_pylist())
    assert len(curated) == 10 and arms["curated-4"][1].num_rows == 4
    assert set(arms["curated-4"][1]["sample_id"].to_pylist()) <= curated
    for arm in ("random", "candidates"):
        assert arms[arm][1].num_rows == 10
    # the fixture's pools hold the same pictures as the curated set: none may come back
    assert not curated & set(arms["random"][1]["sample_id"].to_pylist())
    assert arm_rows(config, sizes=(4,), seed=0)["random"][1].equals(arms["random"][1])  # seeded


def test_ablation_end_to_end(tmp_path, monkeypatch):
    from photogenic.stages.runner import run_stage

    # a relative data root, as the demo's ("data"): the arms' models must not be looked for under it twice
    monkeypatch.chdir(tmp_path.parent)
    config = _config(Path(tmp_path.name))
    run_stage("pretrain", config, progress=False)
    summary = run_ablation(config, sizes=(4,), guidance_scales=(4.0,), progress=False)

    assert summary["arms"]["curated"]["rows"] == summary["arms"]["random"]["rows"] == 10
    names = [c["name"] for c in summary["comparisons"]]
    assert names == ["curated-vs-pretrained", "random-vs-pretrained", "candidates-vs-pretrained",
                     "curated-4-vs-pretrained", "curated-vs-random", "curated-vs-candidates",
                     "curated-vs-pretrained-guidance-4"]
    assert summary["guidance_scales"] == [config.evaluate.sampling.guidance_scale, 4.0]
    for comparison in summary["comparisons"]:
        assert 0.0 <= comparison["headline"]["visual_appeal"]["win_rate"] <= 1.0
    assert 0.0 <= win_rate(summary, "curated-vs-random") <= 1.0
    # each arm's dataset: its training rows and the curated validation rows, images readable
    arm = pq.read_table(tmp_path / "datasets" / "ablation-random" / "manifest.parquet").to_pandas()
    assert (arm["split"] == "train").sum() == 10 and (arm["split"] == "validation").sum() == 2
    for name in ("ablation-curated", "ablation-random", "ablation-candidates", "ablation-curated-4"):
        assert (tmp_path / "models" / name / "model_index.json").is_file()
    # same prompts and seeds in every comparison
    seeds = {c["name"]: pq.read_table(tmp_path / "datasets" / f"ablation-{c['name']}" / "manifest.parquet",
                                      columns=["prompt_id", "seed"]).to_pandas().drop_duplicates()
             .sort_values("prompt_id").to_dict("list") for c in summary["comparisons"]}
    assert len({json.dumps(v) for v in seeds.values()}) == 1
    report = (tmp_path / "datasets" / "ablation" / "report.html").read_text()
    assert "curated" in report and "candidates" in report
    saved = json.loads((tmp_path / "datasets" / "ablation" / "results.json").read_text())
    assert saved["mlflow_run_id"] == summary["mlflow_run_id"]
    runs = mlflow.search_runs(experiment_names=[EXPERIMENT])
    # a training run per arm, an evaluation per comparison, the summary
    assert len(runs) == 4 + 7 + 1
    # the arms are not versions of the project's model (the pretrained model above is its only one)
    versions = mlflow.MlflowClient().search_model_versions("name='photogenic-t2i'")
    assert [v.tags.get("stage") for v in versions] == ["pretrain"]

    # the command hands its options over and prints the summary
    from photogenic.evaluation import ablation

    asked = {}

    def recorded(cfg, **kwargs):
        asked.update(kwargs)
        return {**summary, "folder": summary["folder"]}

    monkeypatch.setattr(ablation, "run_ablation", recorded)
    path = tmp_path / "config.yaml"
    path.write_text(dump_config(config))
    out = CliRunner().invoke(app, ["evaluate", "ablation", "--config", str(path), "--size", "4", "--guidance", "4",
                                   "--quiet"])
    assert out.exit_code == 0, out.output
    assert asked == {"sizes": (4,), "guidance_scales": (4.0,), "seed": config.evaluate.seed, "progress": False}
    assert f"curated vs random (guidance {config.evaluate.sampling.guidance_scale:g}) visual_appeal" in out.output
    assert "report:" in out.output
