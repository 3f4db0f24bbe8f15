"""Malformed annotation exports end as bad rows or one message naming the file, never a
traceback: the cases that crashed the curation import and the human-rating import."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from photogenic.curation.importer import import_stage
from photogenic.curation.submissions import read_export
from photogenic.errors import DataError
from photogenic.evaluation.human import _read_vote_file
from photogenic.safety.parsing import MAX_JSON_DEPTH, parse_json
from tests.support.curation_world import ls_annotation, ls_task, make_world, sample_id, write_json

KEEP1 = {"verdict": "keep", "criteria": ["composition"]}
HEADER = "sample_id,stage,annotator,submitted_at,verdict,composition,lighting,colour_contrast,subject_background\n"


@pytest.fixture
def world(tmp_path):
    return make_world(tmp_path / "data")


def test_annotations_that_are_not_a_list_are_a_bad_row(world, tmp_path):
    tasks = [ls_task(0, 1, ls_annotation(1, 1, KEEP1)), ls_task(1, 1)]
    tasks[1]["annotations"] = 1  # was: TypeError while telling the file's stage
    result = import_stage(world, 1, files=[write_json(tmp_path / "e.json", tasks)], skip_bad=True)
    assert result.counts["submissions"] == 1
    assert [(b.row, b.field, b.reason_code) for b in result.quarantine] == [(2, "annotations", "wrong_type")]


@pytest.mark.parametrize("result", [True, 3, "keep", {"verdict": "keep"}])
def test_a_result_that_is_not_a_list_is_a_bad_row(world, tmp_path, result):
    annotation = {**ls_annotation(1, 1, KEEP1), "result": result}  # was: TypeError telling the file's stage
    outcome = import_stage(world, 1, files=[write_json(tmp_path / "e.json", [ls_task(0, 1, annotation)])],
                           skip_bad=True)
    assert [(b.field, b.reason_code) for b in outcome.quarantine] == [("annotations[0].result", "wrong_type")]


def test_tasks_claiming_a_stage_that_does_not_exist_are_bad_rows(tmp_path):
    tasks = [ls_task(i, 1) for i in range(5)]
    for task in tasks:
        task["data"]["stage"] = 7  # was: the file's stage by majority, then KeyError looking stage 7 up
    tasks[0]["annotations"] = [ls_annotation(1, 1, {"verdict": "keep"})]
    parsed = read_export(write_json(tmp_path / "e.json", tasks))
    assert parsed.stage == 1 and not parsed.submissions
    assert {(b.field, b.reason_code) for b in parsed.bad} == {("data.stage", "wrong_stage")}


@pytest.mark.parametrize("rating", ["²", "٣", "1" * 5000])
def test_a_rating_that_is_digits_but_not_ascii_is_a_bad_row(world, tmp_path, rating):
    # '²'.isdigit() is True and int('²') a ValueError; a 5000-digit number passes the digit limit of int()
    import_stage(world, 1, files=[write_json(tmp_path / "s1.json", [ls_task(i, 1, ls_annotation(1, 1, KEEP1))
                                                                    for i in range(6)])])
    path = tmp_path / "s2.csv"
    path.write_text("sample_id,stage,annotator,submitted_at,verdict,composition,lighting,colour_contrast,"
                    "subject_background,tells_story,could_improve_a_lot,best_of_subject,caption\n"
                    f"{sample_id(0)},2,spec-a,2026-01-05T10:00:00Z,keep,{rating},4,4,4,yes,no,yes,a caption\n")
    result = import_stage(world, 2, files=[str(path)], skip_bad=True)
    assert [(b.field, b.reason_code) for b in result.quarantine] == [("composition", "wrong_type")]


def test_a_stage_column_of_exotic_digits_does_not_crash(world, tmp_path):
    path = tmp_path / "s1.csv"
    path.write_text(HEADER + f"{sample_id(0)},²,ann-a,2026-01-05T10:00:00Z,keep,yes,no,no,no\n")
    result = import_stage(world, 1, files=[str(path)], skip_bad=True)
    assert [(b.field, b.reason_code) for b in result.quarantine] == [("stage", "wrong_stage")]


def test_deeply_nested_json_is_one_message(world, tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)  # was: RecursionError
    with pytest.raises(DataError, match="deep.json nests arrays or objects deeper"):
        import_stage(world, 1, files=[str(path)], skip_bad=True)
    shallow_but_deep = json.dumps([{"data": {"sample_id": sample_id(0), "x": _nested(MAX_JSON_DEPTH + 1)}}])
    path.write_text(shallow_but_deep)
    with pytest.raises(DataError, match=f"more than {MAX_JSON_DEPTH} deep"):
        import_stage(world, 1, files=[str(path)], skip_bad=True)


def _nested(depth):
    value = []
    for _ in range(depth):
        value = [value]
    return value


def test_a_csv_field_over_the_csv_modules_limit_is_one_message(world, tmp_path):
    path = tmp_path / "big.csv"
    path.write_text(HEADER + f"{sample_id(0)},1,ann-a,2026-01-05T10:00:00Z,keep,yes,no,no,\"{'x' * 200_000}\"\n")
    with pytest.raises(DataError, match=r"big.csv, line \d+: not a readable CSV row"):  # was: _csv.Error
        import_stage(world, 1, files=[str(path)], skip_bad=True)


def test_the_cli_reports_a_hostile_export_without_a_traceback(world, tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    config = tmp_path / "params.yaml"
    config.write_text(json.dumps(world.resolved()))
    done = subprocess.run([sys.executable, "-m", "photogenic.cli", "curation", "import", str(path), "--stage", "1",
                           "--config", str(config)], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr and "deep.json" in done.stderr


def test_integers_beyond_pythons_digit_limit_are_refused_as_json():
    # int() refuses more than 4300 digits with ValueError, which json.loads lets through
    with pytest.raises(DataError, match="not valid JSON"):
        parse_json(b"[" + b"9" * 5000 + b"]", "the file")


@pytest.mark.parametrize("content", [
    "[" * 50_000,
    '[{"data": {"pair_id": "p1", "export_id": "e"}, "annotations": 1}]',
    '[{"data": {"pair_id": "p1", "export_id": "e"}, "annotations": [1]}]',
    '[{"data": {"pair_id": "p1", "export_id": "e"}, "annotations": [{"result": [{"type": "choices", '
    '"from_name": ["x"], "value": {}}]}]}]',
    '[{"data": {"pair_id": "p1", "export_id": "e"}, "annotations": [{"result": [{"type": "choices", '
    '"from_name": "visual_appeal", "value": {"choices": 3}}]}]}]',
    '{"format": "photogenic-human-votes/1", "export_id": "e", "criterion": ["x"], "rater": "r", "votes": []}',
], ids=["deep", "annotations-int", "annotation-int", "criterion-list", "choices-int", "page-criterion-list"])
def test_human_rating_files_fail_as_one_message(tmp_path, content):
    path = tmp_path / "votes.json"
    path.write_text(content)
    with pytest.raises(DataError):
        _read_vote_file(path, "e")


def test_human_rating_csv_with_a_huge_field_or_bad_encoding_is_one_message(tmp_path):
    path = tmp_path / "votes.csv"
    path.write_text("export_id,criterion,rater,pair_id,choice\n" + f"e,visual_appeal,r,\"{'p' * 200_000}\",A\n")
    with pytest.raises(DataError, match="not a readable CSV row"):
        _read_vote_file(path, "e")
    path.write_bytes(b"export_id,criterion\n\xff\xfe\xfa")
    with pytest.raises(DataError, match="not UTF-8"):
        _read_vote_file(path, "e")
