"""A small curation world for tests: a candidate dataset of real images in a shard, the sample
pool ground truth it came from, and helpers that write Label Studio exports and CSVs by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from photogenic.config import load_config
from photogenic.dataset.schema import QUARANTINE_SCHEMA
from photogenic.dataset.shards import ShardWriter
from photogenic.dataset.store import Dataset
from photogenic.samplepool.writer import GROUND_TRUTH_SCHEMA
from tests.conftest import image_bytes

N = 12


def sample_id(i: int) -> str:
    return f"{i:064x}"


def make_world(root: Path, n: int = N, *overrides: str):
    """``n`` candidates (sample ids 00..0i), the first half photogenic by the ground truth."""
    root.mkdir(parents=True, exist_ok=True)
    candidates = Dataset(str(root / "datasets" / "candidates"))
    writer = ShardWriter(candidates.shards_dir, first_index=0, max_images=1000, max_bytes=2**30)
    rows, truth = [], []
    for i in range(n):
        stored = writer.add(sample_id(i), "jpg", image_bytes((64, 48), seed=i))
        key = f"00000{i:04d}"
        rows.append({"sample_id": sample_id(i), "shard": f"shards/{stored.shard}", "offset": stored.offset,
                     "length": stored.length, "format": "JPEG", "width": 64, "height": 48,
                     "source_kind": "webdataset", "source": f"00000.tar#{key}",
                     "caption": f"alt text {i}" if i % 5 else None, "caption_status": "ok" if i % 5 else "empty",
                     "score_technical_quality": 0.5 + i / 100})
        photogenic = i < n // 2
        truth.append({"key": key, "shard": 0, "sample_index": i, "weaknesses": [] if photogenic else ["flat_lighting"],
                      "defects": [] if photogenic or i % 2 else ["blur"], "photogenic": photogenic,
                      "scene_caption": f"a photo of scene {i} in soft light", "near_duplicate_of": None})
    writer.close_shard()
    candidates.write(pa.Table.from_pylist(rows), QUARANTINE_SCHEMA.empty_table(), {"name": "candidates"})
    pool = root / "raw" / "sample-pool"
    pool.mkdir(parents=True)
    columns = {f.name: [r.get(f.name) for r in truth] for f in GROUND_TRUTH_SCHEMA}
    pq.write_table(pa.Table.from_pydict(columns, schema=GROUND_TRUTH_SCHEMA), pool / "ground_truth.parquet")
    return load_config(None, [
        f"data.root={root}", "curation.stage1.annotators=[ann-a, ann-b]", "curation.stage1.overlap=0.5",
        "curation.stage1.quota=8", "curation.stage2.annotators=[spec-a, spec-b, spec-c]", "curation.stage2.overlap=0.5",
        "curation.stage2.quota=3", *overrides])


def ls_annotation(stage: int, user: int | dict, answers: dict, when: str = "2026-01-05T10:00:00Z", **extra) -> dict:
    """One Label Studio annotation with the controls of ``stage`` (``labels``) answered."""
    result = []
    for name, value in answers.items():
        control = f"s{stage}_{name}"
        if name == "criteria":
            result.append({"from_name": "s1_criteria", "to_name": "image", "type": "choices", "value": {"choices": value}})
        elif name == "caption":
            result.append({"from_name": control, "to_name": "image", "type": "textarea", "value": {"text": [value]}})
        elif isinstance(value, int) and not isinstance(value, bool):
            result.append({"from_name": control, "to_name": "image", "type": "rating", "value": {"rating": value}})
        else:
            result.append({"from_name": control, "to_name": "image", "type": "choices", "value": {"choices": [value]}})
    return {"id": extra.pop("id", 1), "completed_by": user, "result": result, "was_cancelled": False,
            "created_at": when, "updated_at": when, **extra}


def ls_task(i: int, stage: int, *annotations: dict, task_id: int | None = None) -> dict:
    return {"id": task_id or i + 1, "data": {"image": f"/data/local-files/?d=curation/images/{sample_id(i)}.jpg",
                                              "sample_id": sample_id(i), "stage": stage},
            "annotations": list(annotations), "predictions": []}


STAGE2_GOOD = {"verdict": "keep", "composition": 5, "lighting": 4, "colour_contrast": 5, "subject_background": 4,
               "tells_story": "yes", "could_improve_a_lot": "no", "best_of_subject": "yes"}


def write_json(path: Path, tasks: list) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(tasks))
    return str(path)
