"""Importing annotation exports: votes, quotas, captions, and every bad-import case named by
file, row and field."""

import csv
import json

import pyarrow.parquet as pq
import pytest

from photogenic.curation.importer import add_exports, import_stage
from photogenic.curation.layout import CurationLayout
from photogenic.errors import ConfigError, DataError
from tests.support.curation_world import STAGE2_GOOD, ls_annotation, ls_task, make_world, sample_id, write_json

KEEP1 = {"verdict": "keep", "criteria": ["composition", "lighting"]}
REJECT1 = {"verdict": "reject", "criteria": []}


@pytest.fixture
def world(tmp_path):
    return make_world(tmp_path / "data")


def stage1_file(tmp_path, name="ann-a.json", user=1, keep=range(6), samples=range(12), when="2026-01-05T10:00:00Z"):
    tasks = [ls_task(i, 1, ls_annotation(1, user, KEEP1 if i in keep else REJECT1, when=when, id=100 + i))
             for i in samples]
    return write_json(tmp_path / "exports" / name, tasks)


def stage1_done(world, tmp_path):
    """Stage 1 imported: samples 0-5 kept and selected."""
    return import_stage(world, 1, files=[stage1_file(tmp_path)])


def test_stage1_votes_ties_keep_and_quota_orders_by_votes_then_score(tmp_path):
    world = make_world(tmp_path / "data", 12, "curation.stage1.quota=3")
    a = stage1_file(tmp_path, "a.json", 1, keep={0, 1, 2, 3, 4}, samples=range(6))
    b = stage1_file(tmp_path, "b.json", 2, keep={0, 1, 5}, samples=range(6))
    result = import_stage(world, 1, files=[a, b])
    rows = {r["sample_id"]: r for r in result.table.to_pylist()}
    # 0 and 1: two keep votes; 2, 3, 4: one keep one reject (a tie: stage 1 keeps); 5: tie too
    assert rows[sample_id(0)]["stage1_verdict"] == "keep" and rows[sample_id(0)]["stage1_keep_share"] == 1.0
    assert rows[sample_id(2)]["stage1_verdict"] == "keep" and rows[sample_id(2)]["stage1_keep_share"] == 0.5
    # quota 3: both unanimous samples, then the tie with the highest auto-filter score (5: 0.55)
    selected = sorted(r["sample_id"] for r in result.table.to_pylist() if r["selected"])
    assert selected == [sample_id(0), sample_id(1), sample_id(5)]
    assert rows[sample_id(1)]["stage1_rank"] == 1 and rows[sample_id(0)]["stage1_rank"] == 2
    assert rows[sample_id(0)]["stage1_composition"] == 1.0 and rows[sample_id(0)]["stage1_subject_background"] == 0.0
    assert result.agreement["verdict"].method == "cohen" and result.agreement["verdict"].items == 6


def test_stage2_tie_rejects_and_caption_comes_with_annotator_and_time(world, tmp_path):
    stage1_done(world, tmp_path)
    tasks = [
        ls_task(0, 2, ls_annotation(2, {"id": 7, "email": "spec-a@example.com"},
                                    {**STAGE2_GOOD, "caption": "A red car  on a beach."}, when="2026-01-06T09:00:00Z")),
        ls_task(1, 2, ls_annotation(2, 7, {**STAGE2_GOOD}), ls_annotation(2, 8, {**STAGE2_GOOD, "verdict": "reject"}, id=2)),
    ]
    result = import_stage(world, 2, files=[write_json(tmp_path / "s2.json", tasks)])
    rows = {r["sample_id"]: r for r in result.table.to_pylist()}
    assert rows[sample_id(1)]["stage2_verdict"] == "reject"  # 1 keep, 1 reject: stage 2 rejects ties
    first = rows[sample_id(0)]
    assert first["stage2_verdict"] == "keep" and first["selected"]
    assert first["human_caption"] == "A red car  on a beach."  # cleaned later, by the caption stage
    assert first["human_caption_annotator"] == "spec-a@example.com"
    assert first["human_caption_at"] == "2026-01-06T09:00:00Z"
    assert first["stage2_composition"] == 5.0 and first["stage2_tells_story"] == 1.0


def test_csv_import_matches_label_studio(world, tmp_path):
    path = tmp_path / "s1.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sample_id", "stage", "annotator", "submitted_at", "verdict", "composition", "lighting",
                         "colour_contrast", "subject_background", "image"])
        writer.writerow([sample_id(0), 1, "ann-a", "2026-01-05T10:00:00Z", "keep", "yes", "yes", "", "", "x"])
        writer.writerow([sample_id(1), 1, "ann-a", "2026-01-05T10:00:00Z", "reject", "", "", "", "", "x"])
        writer.writerow([sample_id(2), 1, "ann-a", "", "", "", "", "", "", "x"])  # not annotated yet
    result = import_stage(world, 1, files=[str(path)])
    rows = {r["sample_id"]: r for r in result.table.to_pylist()}
    assert rows[sample_id(0)]["stage1_verdict"] == "keep" and rows[sample_id(0)]["stage1_lighting"] == 1.0
    assert rows[sample_id(1)]["stage1_verdict"] == "reject"
    assert result.counts["unanswered"] == 1 and sample_id(2) not in rows


# -- bad imports: one test per case ----------------------------------------------------------

def test_unknown_sample_id(world, tmp_path):
    task = ls_task(0, 1, ls_annotation(1, 1, KEEP1))
    task["data"]["sample_id"] = "f" * 64
    path = write_json(tmp_path / "bad.json", [ls_task(1, 1, ls_annotation(1, 1, KEEP1)), task])
    with pytest.raises(DataError, match=rf"bad\.json, row 2, field 'sample_id': '{'f' * 64}' is not a sample"):
        import_stage(world, 1, files=[path])


def test_label_for_a_stage_the_sample_never_reached(world, tmp_path):
    stage1_done(world, tmp_path)  # 6-11 rejected in stage 1
    path = write_json(tmp_path / "s2.json", [ls_task(0, 2, ls_annotation(2, 7, STAGE2_GOOD)),
                                             ls_task(9, 2, ls_annotation(2, 7, STAGE2_GOOD))])
    with pytest.raises(DataError, match=r"s2\.json, row 2, field 'sample_id': sample 0+9 never reached stage 2"):
        import_stage(world, 2, files=[path])


def test_duplicate_submission(world, tmp_path):
    first = stage1_file(tmp_path, "one.json", user=1, samples=[0])
    second = write_json(tmp_path / "exports" / "two.json", [ls_task(0, 1, ls_annotation(1, 1, REJECT1, id=9))])
    with pytest.raises(DataError, match=r"user-1 submitted sample 0+ 2 times with different answers "
                                        r"\(.*one\.json, row 1, .*two\.json, row 1\)"):
        import_stage(world, 1, files=[first, second])


def test_missing_field(world, tmp_path):
    no_verdict = ls_task(0, 1, ls_annotation(1, 1, {"criteria": ["lighting"]}))
    no_user = ls_task(1, 1, ls_annotation(1, None, KEEP1))
    path = write_json(tmp_path / "bad.json", [no_verdict, no_user])
    with pytest.raises(DataError) as caught:
        import_stage(world, 1, files=[path])
    message = str(caught.value)
    assert "bad.json, row 1, field 's1_verdict': no answer" in message
    assert "bad.json, row 2, field 'annotations[0].completed_by'" in message


def test_wrong_type(world, tmp_path):
    stage1_done(world, tmp_path)
    path = write_json(tmp_path / "s2.json", [ls_task(0, 2, ls_annotation(2, 7, {**STAGE2_GOOD, "lighting": 9}))])
    with pytest.raises(DataError, match=r"s2\.json, row 1, field 's2_lighting': value\.rating must be an integer 1-5"):
        import_stage(world, 2, files=[path])


def test_wrong_type_in_csv_names_the_line(world, tmp_path):
    path = tmp_path / "s1.csv"
    path.write_text("sample_id,stage,annotator,submitted_at,verdict,composition,lighting,colour_contrast,"
                    f"subject_background\n{sample_id(0)},1,ann-a,2026-01-05T10:00:00Z,maybe,yes,no,no,no\n")
    with pytest.raises(DataError, match=r"s1\.csv, row 2, field 'verdict': expected keep or reject, got 'maybe'"):
        import_stage(world, 1, files=[str(path)])


def test_file_from_the_wrong_stage(world, tmp_path):
    path = write_json(tmp_path / "s2.json", [ls_task(0, 2, ls_annotation(2, 7, STAGE2_GOOD))])
    with pytest.raises(DataError, match=r"s2\.json is a stage-2 export, but stage 1 is being imported"):
        import_stage(world, 1, files=[path])


def test_not_a_label_studio_export(world, tmp_path):
    path = tmp_path / "min.json"
    path.write_text(json.dumps({"tasks": []}))
    with pytest.raises(DataError, match="min.json holds a JSON dict, not the list of tasks"):
        import_stage(world, 1, files=[str(path)])


def test_skip_bad_quarantines_rows_with_reasons(world, tmp_path):
    good = stage1_file(tmp_path, samples=range(1, 12))
    bad_task = ls_task(0, 1, ls_annotation(1, 1, {"verdict": "perhaps"}))
    unknown = ls_task(0, 1, ls_annotation(1, 1, KEEP1))
    unknown["data"]["sample_id"] = "nope"
    bad = write_json(tmp_path / "exports" / "bad.json", [bad_task, unknown])
    result = import_stage(world, 1, files=[good, bad], skip_bad=True)
    assert result.counts["quarantined"] == 2 and result.counts["submissions"] == 11
    quarantine = pq.read_table(CurationLayout.of(world).quarantine(1)).to_pylist()
    assert {q["reason_code"] for q in quarantine} == {"wrong_type", "unknown_sample"}
    assert all("bad.json, row" in q["reason"] for q in quarantine)


def test_reimporting_the_same_export_is_a_no_op(world, tmp_path):
    path = stage1_file(tmp_path)
    add_exports(world, [path])
    layout = CurationLayout.of(world)
    before = (open(layout.result(1), "rb").read(), sorted((tmp_path / "data/curation/stage1/annotations").iterdir()))
    again = add_exports(world, [path, path])[1]  # the same file, twice more
    after = (open(layout.result(1), "rb").read(), sorted((tmp_path / "data/curation/stage1/annotations").iterdir()))
    assert before == after and again.counts["submissions"] == 12


def test_import_command_refuses_a_bad_file_before_adding_it(world, tmp_path):
    bad = write_json(tmp_path / "bad.json", [ls_task(0, 1, ls_annotation(1, 1, {"verdict": "perhaps"}))])
    with pytest.raises(DataError, match="bad.json, row 1, field 's1_verdict'"):
        add_exports(world, [bad])
    assert not (tmp_path / "data/curation/stage1/annotations").exists()


def test_unknown_score_column_names_the_key(tmp_path):
    world = make_world(tmp_path / "data", 12, "curation.score_column=score_aesthetic")
    with pytest.raises(ConfigError, match="curation.score_column is 'score_aesthetic'.*score_technical_quality"):
        import_stage(world, 1, files=[stage1_file(tmp_path)])


def test_no_annotations_says_what_to_do(world):
    with pytest.raises(DataError, match="No stage-1 annotations under .*label_config.xml"):
        import_stage(world, 1)


def test_import_command_reports_a_bad_row_as_one_message(world, tmp_path):
    import subprocess
    import sys

    import yaml

    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(world.resolved()))
    bad = write_json(tmp_path / "bad.json", [ls_task(0, 1, ls_annotation(1, 1, {"verdict": "perhaps"}))])
    done = subprocess.run([sys.executable, "-m", "photogenic.cli", "curation", "import", bad, "--config", str(config)],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "bad.json, row 1, field 's1_verdict'" in done.stderr and "--skip-bad" in done.stderr
    done = subprocess.run([sys.executable, "-m", "photogenic.cli", "curation", "import", bad, "--skip-bad",
                           "--config", str(config)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert '"quarantined": 1' in done.stdout


def test_curation_input_is_checked_as_every_stage_input_is(tmp_path):
    """The candidates must exist, and the curated set may never overwrite them."""
    from photogenic.curation.export import candidates

    same = make_world(tmp_path / "a", 4, "curation.output=candidates")
    with pytest.raises(ConfigError, match="curation.input and curation.output are both 'candidates'"):
        candidates(same)
    missing = make_world(tmp_path / "b", 4, "curation.input=not_filtered_yet")
    with pytest.raises(DataError, match="'not_filtered_yet' \\(curation.input\\) does not exist.*run the auto-filter"):
        candidates(missing)
