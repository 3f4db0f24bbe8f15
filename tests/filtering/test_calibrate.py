"""Thresholds fitted from people's stage-1 verdicts (photogenic.filtering.calibrate)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from photogenic.config import load_config
from photogenic.dataset.store import Dataset
from photogenic.errors import DataError
from photogenic.filtering.calibrate import calibrate, fit_thresholds, knobs, passes, read_labels
from tests.support.curation_world import ls_annotation, ls_task, sample_id, write_json
from tests.support.real_photos import real_photo_set


def planted_labels(n: int, seed: int, flip: float):
    """Scores a, b, c uniform on [0, 1]; people keep a row when a >= 0.4 and b <= 0.7 (c means
    nothing), with a share ``flip`` of verdicts flipped at random."""
    rng = np.random.default_rng(seed)
    a, b, c = rng.random(n), rng.random(n), rng.random(n)
    kept = (a >= 0.4) & (b <= 0.7)
    kept ^= rng.random(n) < flip
    return [a, b, c], kept


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_fit_recovers_planted_thresholds(seed):
    """With 5% of verdicts flipped, the planted thresholds themselves keep about 93% of what
    people kept (the flipped keeps below them are lost), so the target is 0.9: at 0.95 the fit
    rightly stops short of them (0.36 and 0.26 for a, on two of these seeds)."""
    values, kept = planted_labels(4000, seed, flip=0.05)
    fit = fit_thresholds(values, ["min", "max", "min"], kept, target_recall=0.9)
    a, b, c = fit.thresholds
    assert a == pytest.approx(0.4, abs=0.03)
    assert b == pytest.approx(0.7, abs=0.03)
    # the meaningless score may peel a slice that label noise makes look bad, but no more
    assert c is None or np.mean(values[2] < c) <= 0.03
    keep = np.logical_and.reduce([passes(v, s, t) for v, s, t in zip(values, ["min", "max", "min"], fit.thresholds)])
    assert (keep & kept).sum() / kept.sum() >= 0.9


def test_the_fit_keeps_the_target_recall_when_labels_disagree_with_every_score():
    rng = np.random.default_rng(3)
    values = [rng.random(2000), rng.random(2000)]
    kept = rng.random(2000) < 0.5  # verdicts unrelated to the scores
    fit = fit_thresholds(values, ["min", "min"], kept, target_recall=0.95)
    keep = np.logical_and.reduce([passes(v, "min", t) for v, t in zip(values, fit.thresholds)])
    assert (keep & kept).sum() / kept.sum() >= 0.95


def test_nothing_is_tightened_when_people_kept_everything():
    values = [np.linspace(0, 1, 500)]
    fit = fit_thresholds(values, ["min"], np.ones(500, dtype=bool), target_recall=0.9)
    assert fit.thresholds == [None]


def test_unscored_rows_are_never_rejected():
    values = np.array([0.1, np.nan, 0.9])
    assert passes(values, "min", 0.5).tolist() == [False, True, True]
    assert passes(values, "max", 0.5).tolist() == [True, True, False]
    assert passes(values, "min", None).all()


def test_labels_from_exports_vote_as_stage_one_does(tmp_path):
    keep, reject = {"verdict": "keep"}, {"verdict": "reject"}
    tasks = [ls_task(0, 1, ls_annotation(1, 1, keep), ls_annotation(1, 2, reject, id=2)),  # tie: keeps
             ls_task(1, 1, ls_annotation(1, 1, reject, id=3), ls_annotation(1, 2, reject, id=4)),
             ls_task(2, 1, ls_annotation(1, 3, keep, id=5))]
    labels = read_labels([write_json(tmp_path / "export.json", tasks)])
    assert labels == {sample_id(0): True, sample_id(1): False, sample_id(2): True}
    result = tmp_path / "result.parquet"
    pq.write_table(pa.table({"sample_id": [sample_id(3)], "stage1_verdict": ["reject"]}), result)
    assert read_labels([str(result)]) == {sample_id(3): False}
    with pytest.raises(DataError, match="No label files"):
        read_labels([])


def test_nsfw_is_a_policy_and_is_not_fitted():
    found = {k.path for k in knobs(load_config(None))}
    assert {"filter.size.min_short_side", "filter.size.max_aspect_ratio", "filter.technical.min_quality",
            "filter.technical.min_component", "filter.ocr.max_text_area"} <= found
    assert not any(path.startswith("filter.nsfw.") for path in found)


@pytest.fixture(scope="module")
def real_photos_ingested(tmp_path_factory):
    """The real-photograph test set ingested, with stage-1 verdicts as people would give:
    every clean photograph kept, every defective copy rejected."""
    from photogenic.stages.ingest import ingest
    from tests.support.real_photos import write_folder

    root = tmp_path_factory.mktemp("calibrate")
    photos = real_photo_set()
    write_folder(photos, root / "raw" / "photos")
    overrides = [f"data.root={root}", "ingest.sources.0.kind=folder", "ingest.sources.0.uri=raw/photos",
                 "ingest.workers=0", "filter.workers=0", "filter.calibrate.holdout=0",
                 "filter.calibrate.mlflow=false"]
    config = load_config(None, overrides)
    ingest(config, progress=False)
    manifest = Dataset(str(root / "datasets" / "ingested")).read_manifest(["sample_id", "source"]).to_pylist()
    defect = {p.name: p.defect for p in photos}
    verdicts = ["keep" if defect[row["source"].rsplit("/", 1)[1].rsplit(".", 1)[0]] is None else "reject"
                for row in manifest]
    labels = root / "stage1-result.parquet"
    pq.write_table(pa.table({"sample_id": [r["sample_id"] for r in manifest], "stage1_verdict": verdicts}), labels)
    return root, overrides, str(labels)


def test_calibrate_writes_a_config_a_second_run_can_use(real_photos_ingested, tmp_path):
    root, overrides, labels = real_photos_ingested
    base = tmp_path / "base.yaml"
    base.write_text("evaluate:\n  max_prompts: 7\nfilter:\n  workers: 0\n")
    config = load_config(base, overrides)
    calibration = calibrate(config, [labels], config_path=str(base), progress=False)

    assert "mlflow_run" not in calibration.files  # filter.calibrate.mlflow=false
    assert calibration.labels == 40 and calibration.held_out == 0  # holdout 0: reported on the fitted labels
    assert calibration.recall >= calibration.target_recall
    assert calibration.precision >= calibration.configured_precision - 1e-9
    # the fragment is a run config of its own; the merged one keeps what the given config set
    fragment = load_config(calibration.files["fragment"])
    merged = load_config(calibration.files["config"])
    assert merged.evaluate.max_prompts == 7
    for path, value in calibration.overrides().items():
        section, key = path.split(".")[1:]
        assert getattr(getattr(fragment.filter, section), key) == pytest.approx(value)
        assert getattr(getattr(merged.filter, section), key) == pytest.approx(value)
    # the second run: the filter with the merged config rejects by the fitted thresholds
    from photogenic.stages.auto_filter import auto_filter

    filtered = auto_filter(load_config(calibration.files["config"], [*overrides, "filter.output=refiltered"]),
                           progress=False)
    survivors = Dataset(filtered.ref.path).read_manifest()
    assert 0 < survivors.num_rows < 40
    assert calibration.overrides()
    for result in calibration.knobs:
        if result.fitted:
            scores = np.array([np.nan if v is None else v for v in survivors[result.knob.column].to_pylist()])
            assert passes(scores, result.knob.side, result.value).all(), result.knob.path
    numbers = json.loads((root / "calibration" / "calibration.json").read_text())
    assert numbers["labels"] == 40 and len(numbers["knobs"]) == len(calibration.knobs)
    for result in calibration.knobs:
        svg = (root / "calibration" / f"{result.knob.section}.{result.knob.key}.svg").read_text()
        assert svg.startswith("<svg xmlns=") and "configured" in svg


def test_a_labelled_sample_of_the_pool_calibrates_end_to_end(tmp_path):
    """`photogenic filter sample --simulate` then `photogenic filter calibrate`, on a small sample
    pool: tasks for a random sample of the ingested pool, SIMULATED stage-1 exports of them, and
    the fit from those files."""
    from typer.testing import CliRunner

    from photogenic.cli.app import app
    from photogenic.samplepool import generate_sample_pool
    from photogenic.stages.ingest import ingest

    pool = tmp_path / "pool"
    generate_sample_pool(pool, n=120, seed=3, progress=False, workers=1)
    sets = [f"data.root={tmp_path / 'data'}", f"ingest.sources.0.uri={pool}/*.tar", "ingest.workers=0",
            "filter.workers=0", f"curation.simulate.ground_truth={pool}/ground_truth.parquet"]
    ingest(load_config(None, sets), progress=False)
    args = [arg for item in sets for arg in ("--set", item)]
    runner = CliRunner()
    sampled = runner.invoke(app, ["filter", "sample", "--n", "80", "--simulate", "--quiet", *args])
    assert sampled.exit_code == 0, sampled.output
    annotations = tmp_path / "data" / "curation" / "calibration" / "stage1" / "annotations"
    exports = sorted(annotations.glob("simulated-*.json"))
    assert exports and (tmp_path / "data" / "curation" / "calibration" / "stage1" / "tasks.json").exists()
    assert len(read_labels([str(p) for p in exports])) == 80
    fitted = runner.invoke(app, ["filter", "calibrate", "--quiet", *args])
    assert fitted.exit_code == 0, fitted.output
    assert "80 labelled images" in fitted.output and "all together" in fitted.output
    assert (tmp_path / "data" / "calibration" / "filter-thresholds.yaml").exists()
    # logged to MLflow: a run of its own (no pipeline step's is active) with the numbers and files
    import mlflow

    runs = mlflow.search_runs(experiment_names=["photogenic-filter-calibration"], output_format="list")
    assert len(runs) == 1 and f"mlflow_run: {runs[0].info.run_id}" in fitted.output
    assert runs[0].data.params["labels"] == "80"
    assert set(runs[0].data.metrics) >= {"calibration_recall", "calibration_precision"}
    logged = {Path(a.path).name for a in mlflow.MlflowClient().list_artifacts(runs[0].info.run_id, "filter_calibration")}
    assert {"filter-thresholds.yaml", "calibration.json", "technical.min_quality.svg"} <= logged
