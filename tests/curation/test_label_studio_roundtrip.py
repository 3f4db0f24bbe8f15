"""A real Label Studio round trip: start the server from PyPI on loopback, create a project per
stage with the exported labeling config, serve the exported images from local-files storage,
import the tasks, submit annotations through the REST API, export, and import the export.

Label Studio pins its own dependencies, so it lives in a separate virtualenv (`make
test-labelstudio` creates .venv-ls); PHOTOGENIC_LABEL_STUDIO points at its `label-studio` script.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

from photogenic.curation.export import export_stage
from photogenic.curation.importer import add_exports
from photogenic.curation.labelconfig import label_config
from photogenic.dataset.store import Dataset
from photogenic.stages.curation import curate
from tests.conftest import REPO
from tests.support.curation_world import make_world

pytestmark = [pytest.mark.slow, pytest.mark.labelstudio]

BINARY = Path(os.environ.get("PHOTOGENIC_LABEL_STUDIO", REPO / ".venv-ls" / "bin" / "label-studio"))
TOKEN = "0123456789abcdef0123456789abcdef01234567"
#: the first start migrates a fresh SQLite database, which takes minutes on a busy machine
STARTUP_S = 900


@pytest.fixture
def label_studio(tmp_path):
    if not BINARY.exists():
        pytest.skip(f"label-studio is not installed at {BINARY}: run `make test-labelstudio`")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": str(tmp_path / "ls"), "LOCAL_FILES_SERVING_ENABLED": "true",
           "LOCAL_FILES_DOCUMENT_ROOT": str(tmp_path / "data"), "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
           "DJANGO_DB": "sqlite"}
    log = (tmp_path / "label-studio.log").open("w")
    server = subprocess.Popen(
        [str(BINARY), "start", "--no-browser", "--host", "127.0.0.1", "--port", str(port),
         "--username", "curator@example.com", "--password", "photogenic-test", "--user-token", TOKEN,
         "--enable-legacy-api-token"], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            if server.poll() is not None:
                pytest.fail(f"label-studio exited with {server.returncode}: {(tmp_path / 'label-studio.log').read_text()[-3000:]}")
            try:
                if requests.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"label-studio did not answer within {STARTUP_S} s")
            time.sleep(2)
        session = requests.Session()
        session.headers["Authorization"] = f"Token {TOKEN}"
        session.base = url
        yield session
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _api(session, method, path, **kwargs):
    response = session.request(method, session.base + path, timeout=120, **kwargs)
    assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text[:500]}"
    return response.json() if response.content else None


def _round(session, world, tmp_path, stage: int, answer) -> Path:
    """Project, storage, tasks, annotations, export; returns the export file."""
    project = _api(session, "POST", "/api/projects", json={"title": f"photogenic stage {stage}",
                                                          "label_config": label_config(stage)})
    images = tmp_path / "data" / "curation" / "images"
    _api(session, "POST", "/api/storages/localfiles", json={"project": project["id"], "path": str(images),
                                                            "title": "curation images", "use_blob_urls": True})
    tasks = json.loads((tmp_path / "data" / "curation" / f"stage{stage}" / "tasks.json").read_text())
    _api(session, "POST", f"/api/projects/{project['id']}/import", json=tasks)
    listed = _api(session, "GET", f"/api/tasks?project={project['id']}&page_size=1000")
    listed = listed["tasks"] if isinstance(listed, dict) else listed
    assert len(listed) == len(tasks)
    # Label Studio serves the exported image files at the task URLs
    served = session.get(session.base + listed[0]["data"]["image"], timeout=60)
    sample = listed[0]["data"]["sample_id"]
    assert served.status_code == 200 and served.content == next(images.glob(f"{sample}.*")).read_bytes()
    for task in listed:
        _api(session, "POST", f"/api/tasks/{task['id']}/annotations",
             json={"result": answer(task["data"]["sample_id"]), "ground_truth": False})
    exported = session.get(f"{session.base}/api/projects/{project['id']}/export?exportType=JSON&download_all_tasks=true",
                           timeout=120)
    assert exported.status_code == 200, exported.text[:500]
    path = tmp_path / "exports" / f"label-studio-stage{stage}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(exported.content)
    return path


def _item(control, kind, value):
    return {"from_name": control, "to_name": "image", "type": kind, "value": value}


def test_label_studio_round_trip(label_studio, tmp_path):
    world = make_world(tmp_path / "data", 8, "curation.simulate.enabled=false", "curation.stage2.quota=2")
    export_stage(world, 1, progress=False)
    keep = {s for s in Dataset(str(tmp_path / "data/datasets/candidates")).read_manifest(["sample_id"])["sample_id"]
            .to_pylist() if int(s, 16) % 2 == 0}

    def stage1(sample_id):
        verdict = "keep" if sample_id in keep else "reject"
        return [_item("s1_verdict", "choices", {"choices": [verdict]}),
                _item("s1_criteria", "choices", {"choices": ["composition", "lighting"]})]

    first = add_exports(world, [str(_round(label_studio, world, tmp_path, 1, stage1))])[1]
    selected = {r["sample_id"] for r in first.table.to_pylist() if r["selected"]}
    assert selected == keep and first.counts["submissions"] == 8

    export_stage(world, 2, progress=False)

    def stage2(sample_id):
        rating = 5 if int(sample_id, 16) < 4 else 3
        return [_item("s2_verdict", "choices", {"choices": ["keep"]}),
                *(_item(f"s2_{c}", "rating", {"rating": rating})
                  for c in ("composition", "lighting", "colour_contrast", "subject_background")),
                *(_item(f"s2_{q}", "choices", {"choices": ["yes"]})
                  for q in ("tells_story", "could_improve_a_lot", "best_of_subject")),
                _item("s2_caption", "textarea", {"text": [f"caption of {sample_id[-2:]}"]})]

    second = add_exports(world, [str(_round(label_studio, world, tmp_path, 2, stage2))])[2]
    rows = {r["sample_id"]: r for r in second.table.to_pylist()}
    assert set(rows) == keep
    best = sorted(s for s in keep if int(s, 16) < 4)
    assert sorted(s for s, r in rows.items() if r["selected"]) == best  # quota 2, by mean rating
    assert rows[best[0]]["human_caption"] == f"caption of {best[0][-2:]}"
    assert rows[best[0]]["human_caption_annotator"] and rows[best[0]]["human_caption_at"]

    # the pipeline stage takes the same exports from the annotations folders
    curated = curate(world, progress=False)
    assert not curated.simulated and curated.ref.rows == 2
