"""Reading annotation exports into checked submissions: one annotator's answers for one sample.

Two formats: Label Studio's JSON export (a list of tasks, each with ``data`` and
``annotations[].result[]`` items ``{from_name, to_name, type, value: {choices|rating|text}}``,
``completed_by``, ``created_at``, ``updated_at``) and the plain CSV that ``export`` writes for
teams without Label Studio (``labels.csv_columns``). Every problem with a row becomes a
``BadRow`` naming the file, the row and the field; problems with a whole file (not JSON, not a
list, a file of the other stage) raise ``DataError`` at once.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from photogenic import labelstudio
from photogenic.curation.labels import (
    CSV_KEYS,
    NO,
    RATING_MAX,
    STAGE1_CRITERIA_CONTROL,
    STAGES,
    YES,
    Question,
    csv_columns,
    stage_of_control,
)
from photogenic.dataset.atomic import filesystem
from photogenic.errors import DataError
from photogenic.safety.parsing import csv_records

#: reason codes of bad rows
UNKNOWN_SAMPLE = "unknown_sample"
NOT_IN_STAGE = "not_in_stage"
DUPLICATE = "duplicate_submission"
MISSING_FIELD = "missing_field"
WRONG_TYPE = "wrong_type"
WRONG_STAGE = "wrong_stage"
UNKNOWN_FIELD = "unknown_field"


@dataclass(frozen=True)
class Submission:
    file: str
    #: 1-based: the task's position in a JSON export, the line number in a CSV
    row: int
    sample_id: str
    stage: int
    annotator: str
    submitted_at: str
    answers: dict[str, Any] = field(hash=False)

    @property
    def fingerprint(self) -> str:
        """Identity of the content, not of where it was read: the same annotation read from two
        copies of one export is the same submission."""
        body = json.dumps([self.sample_id, self.stage, self.annotator, self.submitted_at, self.answers],
                          sort_keys=True, default=str)
        return hashlib.sha256(body.encode()).hexdigest()

    @property
    def where(self) -> str:
        return f"{self.file}, row {self.row}"


@dataclass(frozen=True)
class BadRow:
    file: str
    row: int | None
    field: str
    reason_code: str
    message: str
    sample_id: str | None = None

    def describe(self) -> str:
        where = self.file if self.row is None else f"{self.file}, row {self.row}"
        return f"{where}, field {self.field!r}: {self.message}"


@dataclass
class ParsedFile:
    path: str
    format: str
    stage: int
    submissions: list[Submission] = field(default_factory=list)
    bad: list[BadRow] = field(default_factory=list)
    #: tasks or rows that carry no answer yet (an unannotated task, an unfilled CSV row)
    unanswered: int = 0
    cancelled: int = 0


def read_export(path: str, expected_stage: int | None = None) -> ParsedFile:
    """Parse one export file (format chosen by extension: .json or .csv). ``expected_stage``:
    the stage being imported; a file of the other stage is an error. None: take the file's."""
    fs, local = filesystem(path)
    try:
        raw = fs.cat_file(local)
    except FileNotFoundError:
        raise DataError(f"Annotation file {path} does not exist.") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"Annotation file {path} is not UTF-8 text; expected a Label Studio JSON export or "
                        "the curation CSV.") from None
    if path.lower().endswith(".csv"):
        return _read_csv(path, text, expected_stage)
    if path.lower().endswith(".json"):
        return _read_label_studio(path, text, expected_stage)
    raise DataError(f"Annotation file {path}: unknown format; expected a Label Studio JSON export (.json) "
                    "or the curation CSV (.csv).")


# -- Label Studio JSON --------------------------------------------------------------------------

def _read_label_studio(path: str, text: str, expected: int | None) -> ParsedFile:
    tasks = labelstudio.read_tasks(path, text)
    stage = _file_stage(path, _label_studio_stages(tasks), expected)
    parsed = ParsedFile(path, "label_studio", stage)
    for index, task in enumerate(tasks, start=1):
        if not isinstance(task, dict):
            parsed.bad.append(BadRow(path, index, "(task)", WRONG_TYPE, f"a task must be an object, got {_kind(task)}"))
            continue
        data = task.get("data")
        sample_id = data.get("sample_id") if isinstance(data, dict) else None
        if not isinstance(sample_id, str) or not sample_id:
            parsed.bad.append(BadRow(path, index, "data.sample_id", MISSING_FIELD if sample_id in (None, "") else WRONG_TYPE,
                                     f"the task (id {task.get('id')}) has no sample id string in data.sample_id"))
            continue
        if isinstance(data, dict) and "stage" in data and data["stage"] != stage:
            parsed.bad.append(BadRow(path, index, "data.stage", WRONG_STAGE,
                                     f"the task is a stage-{data['stage']} task in a stage-{stage} file", sample_id))
            continue
        annotations = task.get("annotations")
        if annotations is None or annotations == []:
            parsed.unanswered += 1
            continue
        if not isinstance(annotations, list):
            parsed.bad.append(BadRow(path, index, "annotations", WRONG_TYPE,
                                     f"must be a list, got {_kind(annotations)}", sample_id))
            continue
        for number, annotation in enumerate(annotations, start=1):
            item = _label_studio_annotation(path, index, number, sample_id, stage, annotation)
            if item == "cancelled":
                parsed.cancelled += 1
            elif isinstance(item, BadRow):
                parsed.bad.append(item)
            else:
                parsed.submissions.append(item)
    return parsed


def _label_studio_stages(tasks: list) -> Counter:
    """Which stage the controls and task data of a file point at, counted."""
    seen: Counter = Counter()
    for task in tasks:
        if not isinstance(task, dict):
            continue
        data = task.get("data")
        if isinstance(data, dict) and data.get("stage") in STAGES and not isinstance(data["stage"], bool):
            seen[data["stage"]] += 1
        annotations = task.get("annotations")
        for annotation in annotations if isinstance(annotations, list) else []:
            result = annotation.get("result") if isinstance(annotation, dict) else None
            for item in result if isinstance(result, list) else []:
                stage = stage_of_control(str(item.get("from_name", ""))) if isinstance(item, dict) else None
                if stage is not None:
                    seen[stage] += 1
    return seen


def _label_studio_annotation(path: str, row: int, number: int, sample_id: str, stage: int,
                             annotation: Any) -> Submission | BadRow | str:
    where = f"annotations[{number - 1}]"
    if not isinstance(annotation, dict):
        return BadRow(path, row, where, WRONG_TYPE, f"an annotation must be an object, got {_kind(annotation)}", sample_id)
    if annotation.get("was_cancelled"):
        return "cancelled"  # skipped in Label Studio: no answer
    annotator = labelstudio.annotator(annotation.get("completed_by"))
    if annotator is None:
        return BadRow(path, row, f"{where}.completed_by", MISSING_FIELD, "the annotation does not say who made it", sample_id)
    submitted = annotation.get("updated_at") or annotation.get("created_at")
    if not submitted:
        return BadRow(path, row, f"{where}.created_at", MISSING_FIELD, "the annotation has no time", sample_id)
    if _timestamp(submitted) is None:
        return BadRow(path, row, f"{where}.created_at", WRONG_TYPE, f"not an ISO 8601 time: {submitted!r}", sample_id)
    result = annotation.get("result")
    if not isinstance(result, list):
        return BadRow(path, row, f"{where}.result", MISSING_FIELD if result is None else WRONG_TYPE,
                      "the annotation has no result list", sample_id)
    questions = STAGES[stage]
    answers: dict[str, Any] = {}
    for position, item in enumerate(result):
        label = f"{where}.result[{position}]"
        if not isinstance(item, dict) or not isinstance(item.get("from_name"), str):
            return BadRow(path, row, f"{label}.from_name", MISSING_FIELD, "a result item needs a from_name", sample_id)
        control = item["from_name"]
        value = item.get("value")
        if not isinstance(value, dict):
            return BadRow(path, row, f"{control}.value", MISSING_FIELD, "a result item needs a value object", sample_id)
        if stage_of_control(control) not in (None, stage):
            return BadRow(path, row, control, WRONG_STAGE, f"a stage-{stage_of_control(control)} answer in a "
                          f"stage-{stage} file", sample_id)
        problem = _label_studio_value(questions.stage, control, value, answers)
        if problem is not None:
            return BadRow(path, row, control, problem[0], problem[1], sample_id)
    return _complete(path, row, sample_id, stage, annotator, str(submitted), answers, source="label_studio")


def _label_studio_value(stage: int, control: str, value: dict, answers: dict[str, Any]) -> tuple[str, str] | None:
    """Store one result item's answer in ``answers``; return (reason_code, message) if it is bad."""
    questions = STAGES[stage]
    if stage == 1 and control == STAGE1_CRITERIA_CONTROL:
        choices = value.get("choices")
        if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
            return WRONG_TYPE, f"value.choices must be a list of strings, got {_kind(choices)}"
        criteria = [q.name for q in questions.questions if q.kind == "checkbox"]
        unknown = sorted(set(choices) - set(criteria))
        if unknown:
            return WRONG_TYPE, f"unknown criteria {unknown}; the criteria are {criteria}"
        for name in criteria:
            answers[name] = name in choices
        return None
    name = control[len(questions.prefix):]
    question = next((q for q in questions.questions if q.name == name), None)
    if question is None or question.kind == "checkbox":
        return UNKNOWN_FIELD, f"no control of that name in the stage-{stage} labeling config"
    if question.kind == "choice":
        choices = value.get("choices")
        if not (isinstance(choices, list) and len(choices) == 1 and choices[0] in question.choices):
            return WRONG_TYPE, f"value.choices must be one of {list(question.choices)}, got {choices!r}"
        answers[name] = choices[0]
    elif question.kind == "rating":
        rating = value.get("rating")
        if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= RATING_MAX:
            return WRONG_TYPE, f"value.rating must be an integer 1-{RATING_MAX}, got {rating!r}"
        answers[name] = rating
    elif question.kind == "text":
        text = value.get("text")
        if isinstance(text, str):
            text = [text]
        if not isinstance(text, list) or not all(isinstance(t, str) for t in text):
            return WRONG_TYPE, f"value.text must be a list of strings, got {_kind(text)}"
        answers[name] = " ".join(text)
    return None


# -- CSV -------------------------------------------------------------------------------------

def _read_csv(path: str, text: str, expected: int | None) -> ParsedFile:
    header, rows = csv_records(text, f"Annotation file {path}")
    stages = Counter()
    for number, questions in STAGES.items():
        if set(csv_columns(number)) <= set(header):
            stages[number] += 1
    for row in rows:
        stage = _small_int(row.get("stage") if isinstance(row.get("stage"), str) else "")
        if stage in STAGES:
            stages[stage] += 1
    if not stages:
        missing = [c for c in csv_columns(expected or 1) if c not in header]
        raise DataError(f"Annotation file {path}: the CSV header lacks the column(s) {missing}; a stage-"
                        f"{expected or 1} CSV has the columns {csv_columns(expected or 1)} (see tasks.csv).")
    stage = _file_stage(path, stages, expected)
    missing = [c for c in csv_columns(stage) if c not in header]
    if missing:
        raise DataError(f"Annotation file {path}: the CSV header lacks the column(s) {missing}; a stage-{stage} "
                        f"CSV has the columns {csv_columns(stage)} (see tasks.csv).")
    parsed = ParsedFile(path, "csv", stage)
    questions = STAGES[stage].questions
    for line, row in enumerate(rows, start=2):  # line 1 is the header
        cells = {k: (v or "").strip() for k, v in row.items() if k is not None}
        sample_id = cells.get("sample_id") or None
        if all(not cells.get(q.name) for q in questions):
            parsed.unanswered += 1
            continue
        item = _csv_row(path, line, stage, cells, questions, sample_id)
        (parsed.bad if isinstance(item, BadRow) else parsed.submissions).append(item)
    return parsed


def _csv_row(path: str, line: int, stage: int, cells: dict[str, str], questions: tuple[Question, ...],
             sample_id: str | None) -> Submission | BadRow:
    for key in CSV_KEYS:
        if not cells.get(key):
            return BadRow(path, line, key, MISSING_FIELD, "empty", sample_id)
    if cells["stage"] != str(stage):
        return BadRow(path, line, "stage", WRONG_STAGE, f"a stage-{cells['stage']} row in a stage-{stage} file", sample_id)
    if _timestamp(cells["submitted_at"]) is None:
        return BadRow(path, line, "submitted_at", WRONG_TYPE, f"not an ISO 8601 time: {cells['submitted_at']!r}", sample_id)
    answers: dict[str, Any] = {}
    for question in questions:
        value = cells.get(question.name, "")
        if not value:
            if question.kind == "checkbox":
                answers[question.name] = False
                continue
            if question.required:
                return BadRow(path, line, question.name, MISSING_FIELD, "no answer", sample_id)
            continue
        parsed = _csv_value(question, value)
        if parsed is None:
            return BadRow(path, line, question.name, WRONG_TYPE, _expected(question, value), sample_id)
        answers[question.name] = parsed
    return _complete(path, line, cells["sample_id"], stage, cells["annotator"], cells["submitted_at"], answers,
                     source="csv")


_TRUE = {"yes", "y", "true", "1", "x"}
_FALSE = {"no", "n", "false", "0"}


def _csv_value(question: Question, value: str) -> Any:
    lowered = value.lower()
    if question.kind == "checkbox":
        return True if lowered in _TRUE else False if lowered in _FALSE else None
    if question.kind == "choice":
        if question.choices == (YES, NO):
            return YES if lowered in _TRUE else NO if lowered in _FALSE else None
        return lowered if lowered in question.choices else None
    if question.kind == "rating":
        rating = _small_int(value)
        return rating if rating is not None and 1 <= rating <= RATING_MAX else None
    return value


_DIGITS = re.compile(r"[0-9]{1,6}")


def _small_int(text: str) -> int | None:
    """``text`` as an int when it is a few ASCII digits (``str.isdigit`` also accepts '²', and
    ``int`` refuses numbers longer than Python's digit limit)."""
    text = text.strip()
    return int(text) if _DIGITS.fullmatch(text) else None


def _expected(question: Question, value: str) -> str:
    wanted = {"checkbox": "yes or no", "rating": f"an integer 1-{RATING_MAX}",
              "choice": " or ".join(question.choices)}.get(question.kind, "text")
    return f"expected {wanted}, got {value!r}"


# -- shared ----------------------------------------------------------------------------------

def _complete(path: str, row: int, sample_id: str, stage: int, annotator: str, submitted: str,
              answers: dict[str, Any], source: str) -> Submission | BadRow:
    for question in STAGES[stage].questions:
        if question.name in answers:
            continue
        if question.kind == "checkbox":
            answers[question.name] = False  # an unchecked box is an answer
        elif question.required:
            field_name = question.name if source == "csv" else STAGES[stage].control(question)
            return BadRow(path, row, field_name, MISSING_FIELD, "no answer", sample_id)
    return Submission(path, row, sample_id, stage, annotator, submitted, answers)


def _file_stage(path: str, seen: Counter, expected: int | None) -> int:
    if not seen:
        if expected is None:
            raise DataError(f"Annotation file {path}: cannot tell its curation stage (no task carries data.stage "
                            "and no answer a stage's control name); pass --stage.")
        return expected
    stage = seen.most_common(1)[0][0]
    if expected is not None and stage != expected:
        raise DataError(f"Annotation file {path} is a stage-{stage} export, but stage {expected} is being "
                        f"imported; put it under the stage-{stage} annotations folder or import it with "
                        f"--stage {stage}.")
    return expected or stage


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _kind(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__
