"""SIMULATED annotators, for the embedded sample pool only: they read the pool's hidden ground
truth and write ordinary Label Studio JSON exports, which go through the same import as real ones.

Each simulated annotator judges a sample from what the truth says is wrong with it (image
defects, weak composition, lighting, colour, background), with their own leniency (``bias``) and
a chance of judging at random (``noise``). Generalists (stage 1) are lenient: a merely ordinary
picture often passes. Specialists (stage 2) are strict, rate each criterion 1-5, answer the
subjective questions, and caption what they keep from the scene description, which is richer
than the alt-text. A near-duplicate is judged as its original (an annotator cannot tell which of
two near-identical pictures is the copy).

Simulated users are named ``<annotator>@simulated.invalid`` and their files
``simulated-<annotator>.json``, so a simulated label is never mistaken for a human one.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pyarrow.parquet as pq

from photogenic.config import RunConfig
from photogenic.curation.export import candidates, stage_settings
from photogenic.curation.labelconfig import IMAGE
from photogenic.curation.labels import CRITERIA, KEEP, NO, RATING_MAX, REJECT, STAGE1_CRITERIA_CONTROL, STAGES, YES
from photogenic.curation.layout import CurationLayout
from photogenic.dataset.atomic import filesystem, read_text, write_text
from photogenic.dataset.lock import data_root_lock
from photogenic.dataset.store import Dataset
from photogenic.errors import ConfigError, DataError
from photogenic.paths import join, under_root
from photogenic.samplepool.spec import DUPLICATE_DEFECTS, IMAGE_DEFECTS

log = logging.getLogger(__name__)

SIMULATED_PREFIX = "simulated-"
SIMULATED_DOMAIN = "simulated.invalid"
#: the defects and weaknesses that hurt each criterion
HURTS = {
    "composition": {"small_subject", "off_centre", "cut_off", "too_small", "extreme_aspect"},
    "lighting": {"flat_lighting", "underexposed", "overexposed"},
    "colour_contrast": {"dull_colour", "washed_out", "noise"},
    "subject_background": {"mismatched_background", "text_overlay", "watermark", "blur"},
}
#: when the simulated annotators work: fixed, so the exports (and their DVC md5) are reproducible
_START = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Truth:
    """What is wrong with a sample, as far as a person looking at it can see."""

    problems: frozenset[str]
    defects: frozenset[str]
    photogenic: bool
    scene_caption: str


@dataclass(frozen=True)
class SimulatedAnnotator:
    name: str
    user_id: int
    leniency: float
    noise: float

    @property
    def email(self) -> str:
        return f"{self.name}@{SIMULATED_DOMAIN}"


def is_simulated(path: str) -> bool:
    return path.rsplit("/", 1)[-1].startswith(SIMULATED_PREFIX)


def load_truth(config: RunConfig, dataset: Dataset | None = None) -> dict[str, Truth]:
    """Ground truth per sample id of ``dataset`` (default: the candidates), joined through the
    source key (``<shard>#<key>``)."""
    path = under_root(config.data.root, config.curation.simulate.ground_truth, "curation.simulate.ground_truth")
    fs, local = filesystem(path)
    if not fs.exists(local):
        raise ConfigError(f"The simulated annotators need the sample pool's ground truth, which is not at {path} "
                          "(curation.simulate.ground_truth). Point it at <sample pool>/ground_truth.parquet, or "
                          "set curation.simulate.enabled=false and import real annotations.")
    with fs.open(local, "rb") as handle:
        rows = pq.read_table(handle).to_pylist()
    by_key = {r["key"]: r for r in rows}
    truth = {}
    manifest = (dataset or candidates(config)).read_manifest(["sample_id", "source"]).to_pylist()
    for row in manifest:
        key = row["source"].rsplit("#", 1)[-1]
        record = by_key.get(key)
        if record is None:
            raise DataError(f"Sample {row['sample_id']} (source {row['source']}) has no row in the ground truth "
                            f"{path}: the candidates do not come from this sample pool.")
        original = by_key.get(record["near_duplicate_of"]) if record["near_duplicate_of"] else None
        truth[row["sample_id"]] = truth_of(record, original)
    return truth


def truth_of(record: dict[str, Any], original: dict[str, Any] | None = None) -> Truth:
    """What a person looking at the sample sees wrong with it, from its ground-truth row (and its
    original's, for a near-duplicate, which is judged as its original)."""
    seen = original or record
    defects = frozenset(d for d in seen["defects"] if d in IMAGE_DEFECTS and d not in DUPLICATE_DEFECTS)
    return Truth(problems=defects | frozenset(seen["weaknesses"]), defects=defects,
                 photogenic=not defects and not seen["weaknesses"], scene_caption=record["scene_caption"])


def annotators(config: RunConfig, stage: int) -> list[SimulatedAnnotator]:
    settings, sim = stage_settings(config, stage), config.curation.simulate
    rng = random.Random(f"{sim.seed}-annotators-{stage}")
    return [SimulatedAnnotator(name, 100 * stage + i + 1, rng.uniform(-sim.bias, sim.bias), sim.noise)
            for i, name in enumerate(settings.annotators)]


def simulate_stage(config: RunConfig, stage: int) -> list[str]:
    """Write one simulated Label Studio export per annotator for the stage's exported tasks."""
    with data_root_lock(config.data.root, f"curation simulate, stage {stage}"):
        return _simulate_stage(config, stage)


def _simulate_stage(config: RunConfig, stage: int) -> list[str]:
    layout = CurationLayout.of(config)
    fs, tasks_path = filesystem(layout.tasks(stage))
    if not fs.exists(tasks_path):
        raise DataError(f"No stage-{stage} tasks at {layout.tasks(stage)}: export the stage first "
                        f"(photogenic curation export --stage {stage}).")
    tasks = json.loads(read_text(layout.tasks(stage)))
    written = simulate_tasks(config, stage, tasks, load_truth(config), layout.annotations(stage))
    log.info("SIMULATED annotators wrote %d stage-%d exports under %s", len(written), stage, layout.annotations(stage))
    return written


def simulate_tasks(config: RunConfig, stage: int, tasks: list[dict], truth: dict[str, Truth], folder: str) -> list[str]:
    """One simulated Label Studio export per annotator of the stage, for ``tasks`` (each task's
    ``data`` names its ``sample_id`` and the annotators it is ``assigned_to``), into ``folder``."""
    written = []
    for annotator in annotators(config, stage):
        rng = random.Random(f"{config.curation.simulate.seed}-{stage}-{annotator.name}")
        clock = _START + timedelta(days=7 * (stage - 1))
        exported = []
        for task_id, task in enumerate(tasks, start=1):
            if annotator.name not in task["data"]["assigned_to"]:
                continue
            clock += timedelta(seconds=rng.randint(8, 40) * stage)
            answers = _judge(stage, truth[task["data"]["sample_id"]], annotator, rng)
            exported.append(_export_task(task_id, task, stage, annotator, answers, clock, len(exported)))
        path = join(folder, f"{SIMULATED_PREFIX}{annotator.name}.json")
        write_text(path, json.dumps(exported, indent=1) + "\n")
        written.append(path)
    return written


def _judge(stage: int, truth: Truth, who: SimulatedAnnotator, rng: random.Random) -> dict[str, Any]:
    if stage == 1:
        # generalists: lenient on ordinary pictures, rarely keep a visibly broken one
        p_keep = 0.95 if truth.photogenic else 0.15 if truth.defects else 0.5 if len(truth.problems) == 1 else 0.3
    else:
        # specialists: keep what is flawless, very rarely anything else
        p_keep = 0.9 if truth.photogenic else 0.02 if truth.defects else 0.08
    p_keep = min(1.0, max(0.0, p_keep + who.leniency * (0.5 if stage == 2 else 1.0)))
    random_call = rng.random() < who.noise
    keep = rng.random() < 0.5 if random_call else rng.random() < p_keep
    answers: dict[str, Any] = {"verdict": KEEP if keep else REJECT}
    for name in CRITERIA:
        good = not (truth.problems & HURTS[name])
        if stage == 1:
            answers[name] = rng.random() < (0.85 if good else 0.15)
        else:
            rating = (5 if rng.random() < 0.5 + who.leniency else 4) if good else rng.choice((2, 3))
            answers[name] = rng.randint(1, RATING_MAX) if rng.random() < who.noise else rating
    if stage == 2:
        answers["tells_story"] = YES if rng.random() < (0.6 if truth.photogenic else 0.2) else NO
        answers["could_improve_a_lot"] = YES if rng.random() < (0.15 if truth.photogenic else 0.75) else NO
        answers["best_of_subject"] = YES if rng.random() < (0.3 if truth.photogenic else 0.03) else NO
        # specialists caption what they keep; now and then one forgets
        answers["caption"] = _caption(truth.scene_caption, who, rng) if keep and rng.random() > 0.04 else ""
    return answers


def _caption(scene: str, who: SimulatedAnnotator, rng: random.Random) -> str:
    """The scene description in the annotator's own hand: some drop the final stop, some type a
    stray double space or a trailing newline (which caption cleaning removes)."""
    text = scene
    style = who.user_id % 3
    if style == 1:
        text = text.rstrip(".")
    elif style == 2 and rng.random() < 0.3:
        text = text.replace(" ", "  ", 1) + "\n"
    return text


def _export_task(task_id: int, task: dict, stage: int, who: SimulatedAnnotator, answers: dict[str, Any],
                 when: datetime, count: int) -> dict[str, Any]:
    """One task as Label Studio's JSON export writes it, with this annotator's annotation."""
    created = when.isoformat().replace("+00:00", "Z")
    annotation_id = stage * 1_000_000 + who.user_id * 10_000 + count
    return {
        "id": task_id,
        "data": {k: v for k, v in task["data"].items() if k != "assigned_to"},
        "annotations": [{
            "id": annotation_id,
            "completed_by": {"id": who.user_id, "email": who.email, "first_name": "Simulated", "last_name": who.name},
            "result": _result(stage, answers, annotation_id),
            "was_cancelled": False,
            "ground_truth": False,
            "created_at": created,
            "updated_at": created,
            "lead_time": 12.0 * stage,
            "task": task_id,
        }],
        "predictions": [],
        "meta": {},
        "created_at": _START.isoformat().replace("+00:00", "Z"),
        "updated_at": created,
        "total_annotations": 1,
        "cancelled_annotations": 0,
    }


def _result(stage: int, answers: dict[str, Any], annotation_id: int) -> list[dict[str, Any]]:
    questions = STAGES[stage]
    items = []

    def add(control: str, kind: str, value: dict) -> None:
        items.append({"id": f"r{annotation_id}-{len(items)}", "from_name": control, "to_name": IMAGE, "type": kind,
                      "value": value, "origin": "manual"})

    for question in questions.questions:
        answer = answers[question.name]
        if question.kind == "choice":
            add(questions.control(question), "choices", {"choices": [answer]})
        elif question.kind == "rating":
            add(questions.control(question), "rating", {"rating": answer})
        elif question.kind == "text" and answer:
            add(questions.control(question), "textarea", {"text": [answer]})
    if stage == 1:
        ticked = [name for name in CRITERIA if answers[name]]
        if ticked:
            add(STAGE1_CRITERIA_CONTROL, "choices", {"choices": ticked})
    return items
