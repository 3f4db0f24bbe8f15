"""Export, SIMULATED annotators, the curation stage end to end, and its quality gate."""

import json
import xml.etree.ElementTree as ET

import pyarrow.parquet as pq
import pytest

from photogenic.curation.export import export_stage
from photogenic.curation.importer import import_stage
from photogenic.curation.labelconfig import label_config
from photogenic.curation.layout import CurationLayout
from photogenic.curation.simulate import simulate_stage
from photogenic.dataset.store import Dataset
from photogenic.errors import DataError
from photogenic.stages.curation import curate
from photogenic.stages.runner import check_output
from tests.support.curation_world import make_world, sample_id


def test_label_configs_have_every_control():
    stage1 = ET.fromstring(label_config(1))
    assert {c.get("name") for c in stage1.iter("Choices")} == {"s1_verdict", "s1_criteria"}
    criteria = next(c for c in stage1.iter("Choices") if c.get("name") == "s1_criteria")
    assert criteria.get("choice") == "multiple" and len(criteria.findall("Choice")) == 4
    stage2 = ET.fromstring(label_config(2))
    assert {r.get("name") for r in stage2.iter("Rating")} == {
        "s2_composition", "s2_lighting", "s2_colour_contrast", "s2_subject_background"}
    assert {c.get("name") for c in stage2.iter("Choices")} == {
        "s2_verdict", "s2_tells_story", "s2_could_improve_a_lot", "s2_best_of_subject"}
    assert [t.get("name") for t in stage2.iter("TextArea")] == ["s2_caption"]
    assert all(e.get("toName") == "image" for e in stage2 if e.get("toName"))


def test_export_writes_tasks_images_batches_and_csv(tmp_path):
    world = make_world(tmp_path / "data")
    result = export_stage(world, 1, progress=False)
    layout = CurationLayout.of(world)
    tasks = json.loads(open(layout.tasks(1)).read())
    assert result.tasks == len(tasks) == 12 and result.overlapping == 6  # overlap 0.5 of 12
    first = tasks[0]["data"]
    assert first["image"] == f"/data/local-files/?d=curation/images/{first['sample_id']}.jpg"
    image = tmp_path / "data" / "curation" / "images" / f"{first['sample_id']}.jpg"
    assert image.read_bytes()[:2] == b"\xff\xd8"
    batches = {name: json.loads(open(layout.batch(1, name)).read()) for name in ("ann-a", "ann-b")}
    assert sum(len(b) for b in batches.values()) == 18 and abs(len(batches["ann-a"]) - len(batches["ann-b"])) <= 1
    lines = open(layout.tasks_csv(1)).read().splitlines()
    assert lines[0].startswith("sample_id,stage,annotator,submitted_at,verdict,composition") and len(lines) == 19
    assert ET.fromstring(open(layout.label_config(1)).read()).tag == "View"


def test_stage2_export_needs_stage1(tmp_path):
    world = make_world(tmp_path / "data")
    with pytest.raises(DataError, match="import the stage-1 annotations first"):
        export_stage(world, 2, progress=False)


def test_simulated_exports_are_label_studio_exports_and_import(tmp_path):
    world = make_world(tmp_path / "data")
    export_stage(world, 1, progress=False)
    paths = simulate_stage(world, 1)
    assert [p.rsplit("/", 1)[-1] for p in paths] == ["simulated-ann-a.json", "simulated-ann-b.json"]
    tasks = json.loads(open(paths[0]).read())
    annotation = tasks[0]["annotations"][0]
    assert annotation["completed_by"]["email"] == "ann-a@simulated.invalid"
    assert {"from_name", "to_name", "type", "value"} <= set(annotation["result"][0])
    assert simulate_stage(world, 1) == paths and json.loads(open(paths[0]).read()) == tasks  # reproducible
    result = import_stage(world, 1, files=paths)
    assert result.counts["submissions"] == 18


def test_curation_stage_end_to_end_with_simulated_annotators(tmp_path):
    world = make_world(tmp_path / "data")
    result = curate(world, progress=False)
    assert result.simulated and 1 <= result.ref.rows <= 3
    curated = Dataset(result.ref.path)
    rows = curated.read_manifest().to_pylist()
    assert {r["stage1_verdict"] for r in rows} == {"keep"} == {r["stage2_verdict"] for r in rows}
    assert all(" ".join(r["human_caption"].split()).startswith("a photo of scene") for r in rows if r["human_caption"])
    assert all(r["human_caption_annotator"].endswith("@simulated.invalid") for r in rows if r["human_caption"])
    # the simulated specialists keep what the truth calls photogenic (samples 0-5)
    assert all(int(r["sample_id"], 16) < 6 for r in rows)
    assert curated.image_bytes(rows[0])[:2] == b"\xff\xd8"  # still pointing at the candidates' shard
    assert check_output("curation", result.ref, world).success
    card = curated.read_card()
    assert card["stages"]["stage2"]["counts"]["selected"] == result.ref.rows


def test_people_exports_win_over_simulated_ones(tmp_path):
    world = make_world(tmp_path / "data")
    curate(world, progress=False)
    people = tmp_path / "data/curation/stage1/annotations/team.json"
    people.write_text(json.dumps([{"id": 1, "data": {"sample_id": sample_id(3), "stage": 1}, "annotations": [
        {"completed_by": 5, "created_at": "2026-02-01T10:00:00Z",
         "result": [{"from_name": "s1_verdict", "to_name": "image", "type": "choices",
                     "value": {"choices": ["keep"]}}]}]}]))
    with pytest.raises(DataError, match="No stage-2 annotations"):
        curate(world, progress=False)
    stage1 = pq.read_table(CurationLayout.of(world).result(1)).to_pylist()
    assert [r["sample_id"] for r in stage1] == [sample_id(3)]  # the simulated stage-1 exports were ignored


def test_gate_fails_when_agreement_is_below_a_failing_floor(tmp_path):
    world = make_world(tmp_path / "data", 12, "curation.gate.min_agreement=1.0", "curation.gate.on_low_agreement=fail")
    result = curate(world, progress=False)
    if all(r.verdict_kappa == 1.0 for r in result.stages.values()):
        pytest.skip("the simulated annotators agreed perfectly on this tiny pool")
    gate = check_output("curation", result.ref, world, raise_on_failure=False)
    assert not gate.success and any("agreement" in line for line in gate.failed)


def test_gate_fails_over_the_quota(tmp_path):
    world = make_world(tmp_path / "data")
    result = curate(world, progress=False)
    tighter = world.model_copy(deep=True)
    tighter.curation.stage2.quota = max(1, result.ref.rows - 1)
    if result.ref.rows < 2:
        pytest.skip("one row only")
    gate = check_output("curation", result.ref, tighter, raise_on_failure=False)
    assert not gate.success


def test_a_stage_after_people_is_never_simulated(tmp_path):
    world = make_world(tmp_path / "data")
    people = tmp_path / "data/curation/stage1/annotations/team.json"
    people.parent.mkdir(parents=True)
    people.write_text(json.dumps([{"id": 1, "data": {"sample_id": sample_id(3), "stage": 1}, "annotations": [
        {"completed_by": 5, "created_at": "2026-02-01T10:00:00Z",
         "result": [{"from_name": "s1_verdict", "to_name": "image", "type": "choices",
                     "value": {"choices": ["keep"]}}]}]}]))
    with pytest.raises(DataError, match="No stage-2 annotations under"):
        curate(world, progress=False)
    assert json.loads(open(CurationLayout.of(world).tasks(2)).read())[0]["data"]["sample_id"] == sample_id(3)
