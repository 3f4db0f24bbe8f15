"""Export a curation stage for annotation: Label Studio tasks, labeling config, and a CSV.

Stage 1 exports the whole candidate pool; stage 2 exports what stage 1 selected. Images are
written as files under ``images/`` (Label Studio's local-files storage serves files, not byte
ranges of tar shards); task image URLs are ``curation.image_url_prefix`` + the file's path
relative to the data folder. Tasks are split among the stage's annotators; a configured share
of them (``overlap``) goes to several annotators, so that agreement can be measured.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from dataclasses import dataclass, field

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from photogenic.config import CurationStageConfig, RunConfig
from photogenic.curation.labelconfig import label_config
from photogenic.curation.labels import csv_columns
from photogenic.curation.layout import CurationLayout
from photogenic.dataset.atomic import filesystem, write_bytes, write_text
from photogenic.dataset.commit import settle
from photogenic.dataset.lock import data_root_lock
from photogenic.dataset.store import Dataset
from photogenic.errors import ConfigError, DataError
from photogenic.paths import join, relative_to
from photogenic.stages.inputs import open_input

log = logging.getLogger(__name__)

_EXTENSIONS = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp", "TIFF": "tif"}


@dataclass
class ExportResult:
    stage: int
    tasks: int
    overlapping: int
    per_annotator: dict[str, int] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)


def candidates(config: RunConfig) -> Dataset:
    """The dataset curation annotates (``curation.input``), checked as every stage's input is."""
    return open_input(config.data.root, "curation", config.curation.input, config.curation.output, "the auto-filter")


def stage_settings(config: RunConfig, stage: int) -> CurationStageConfig:
    if stage not in (1, 2):
        raise ConfigError(f"Curation stage must be 1 or 2, got {stage}.")
    settings = config.curation.stage1 if stage == 1 else config.curation.stage2
    if settings.overlap > 0 and settings.raters_per_overlap > len(settings.annotators):
        raise ConfigError(
            f"curation.stage{stage}.raters_per_overlap is {settings.raters_per_overlap} but only "
            f"{len(settings.annotators)} annotators are configured in curation.stage{stage}.annotators.")
    return settings


def stage_pool_ids(config: RunConfig, stage: int) -> list[str]:
    """The sample ids a stage annotates: every candidate (stage 1), or stage 1's selection."""
    if stage == 1:
        return sorted(candidates(config).read_manifest(["sample_id"])["sample_id"].to_pylist())
    layout = CurationLayout.of(config)
    fs, path = filesystem(layout.result(1))
    if not fs.exists(path):
        raise DataError(f"Stage 2 needs stage 1's result ({layout.result(1)}), which does not exist yet: "
                        "import the stage-1 annotations first (photogenic curation import).")
    with fs.open(path, "rb") as handle:
        result = pq.read_table(handle, columns=["sample_id", "selected"])
    return sorted(result.filter(pc.equal(result["selected"], True))["sample_id"].to_pylist())


def export_stage(config: RunConfig, stage: int, progress: bool = True) -> ExportResult:
    with data_root_lock(config.data.root, f"curation export, stage {stage}"):
        layout = CurationLayout.of(config)
        settle(layout.stage(1))  # stage 1's result, if an import of it was interrupted
        return write_tasks(config, stage, candidates(config), stage_pool_ids(config, stage), layout,
                           progress=progress)


def write_tasks(config: RunConfig, stage: int, dataset: Dataset, sample_ids: list[str], layout: CurationLayout,
                progress: bool = True) -> ExportResult:
    """Write a stage's tasks for ``sample_ids`` of ``dataset`` under ``layout`` (the stage's own
    folders, or another layout's: the calibration sample of ``photogenic filter sample``)."""
    settings = stage_settings(config, stage)
    wanted = set(sample_ids)
    manifest = dataset.read_manifest(["sample_id", "shard", "offset", "length", "format", "caption"])
    rows = sorted((r for r in manifest.to_pylist() if r["sample_id"] in wanted), key=lambda r: r["sample_id"])

    tasks = []
    for row in tqdm(rows, desc=f"stage {stage}: images for annotation", disable=not progress, unit="img"):
        image = _materialise(dataset, row, layout)
        url = config.curation.image_url_prefix + relative_to(image, config.data.root)
        tasks.append({"data": {"image": url, "sample_id": row["sample_id"], "stage": stage,
                               "caption": row["caption"] or ""}})
    assignment = assign(len(tasks), settings, seed=stage)
    for task, annotators in zip(tasks, assignment):
        task["data"]["assigned_to"] = annotators

    files = {"label_config": layout.label_config(stage), "tasks": layout.tasks(stage), "csv": layout.tasks_csv(stage)}
    write_text(files["label_config"], label_config(stage))
    write_text(files["tasks"], json.dumps(tasks, indent=1) + "\n")
    per_annotator = {}
    for name in settings.annotators:
        mine = [t for t in tasks if name in t["data"]["assigned_to"]]
        per_annotator[name] = len(mine)
        write_text(layout.batch(stage, name), json.dumps(mine, indent=1) + "\n")
    write_text(files["csv"], _csv(tasks, stage))
    overlapping = sum(1 for a in assignment if len(a) > 1)
    log.info("curation stage %d export: %d tasks (%d seen by several annotators) for %s → %s",
             stage, len(tasks), overlapping, ", ".join(f"{k} {v}" for k, v in per_annotator.items()),
             layout.stage(stage))
    return ExportResult(stage, len(tasks), overlapping, per_annotator, files)


def assign(n_tasks: int, settings: CurationStageConfig, seed: int) -> list[list[str]]:
    """Annotators per task: ``overlap`` of the tasks (chosen at random, reproducibly) go to
    ``raters_per_overlap`` annotators, the rest to one; each task goes to the least loaded
    annotators, so the load is even."""
    rng = np.random.default_rng(seed)
    n_overlap = round(settings.overlap * n_tasks) if len(settings.annotators) > 1 else 0
    overlapping = set(rng.permutation(n_tasks)[:n_overlap].tolist())
    load = dict.fromkeys(settings.annotators, 0)
    order = list(settings.annotators)
    assignment = []
    for index in range(n_tasks):
        count = settings.raters_per_overlap if index in overlapping else 1
        # least loaded first; ties by a per-task rotation so pairs vary across tasks
        rotation = index % len(order)
        chosen = sorted(order, key=lambda a: (load[a], (order.index(a) - rotation) % len(order)))[:count]
        for name in chosen:
            load[name] += 1
        assignment.append(sorted(chosen, key=order.index))
    return assignment


def _materialise(dataset: Dataset, row: dict, layout: CurationLayout) -> str:
    path = join(layout.images, f"{row['sample_id']}.{_EXTENSIONS.get(row['format'], 'img')}")
    fs, local = filesystem(path)
    # the file name is the sha256 of the bytes: an existing file already holds them
    if not fs.exists(local):
        write_bytes(path, dataset.image_bytes(row))
    return path


def _csv(tasks: list[dict], stage: int) -> str:
    """One row per (task, annotator), answers left empty for the annotator to fill in."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[*csv_columns(stage), "image"], lineterminator="\n")
    writer.writeheader()
    for task in tasks:
        for annotator in task["data"]["assigned_to"]:
            writer.writerow({"sample_id": task["data"]["sample_id"], "stage": stage, "annotator": annotator,
                             "image": task["data"]["image"]})
    return buffer.getvalue()
