"""Ingest's decoding on Ray Data (a local Ray): a decode worker killed under a sample costs a
retry, a sample that kills its worker every time is quarantined and the run goes on, nothing
else changes; a killed ingest resumes from the input shards it had finished and writes the same
bytes as an uninterrupted one."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import photogenic.stages.ingest as stage
from photogenic.dataplane.parts import PARTS
from photogenic.dataset.store import Dataset
from photogenic.stages.ingest_worker import run_probe
from tests.conftest import config_for, image_bytes, wds_members, write_tar
from tests.support.deadline import DEADLINE, within_deadline
from tests.support.dying_workers import DIE_ONCE_CAPTION, DIE_ONCE_ENV, KILL_CAPTION, probe_or_die

REPO = Path(__file__).resolve().parents[2]


def _md5s(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _without(card: Path, *params: str) -> dict:
    data = json.loads(card.read_text())
    for name in params:
        data["params"].pop(name)
    return data


def test_a_killed_decode_worker_costs_a_retry_and_the_sample_that_kills_it_twice_is_quarantined(tmp_path, monkeypatch):
    members = []
    for i in range(12):
        caption = KILL_CAPTION if i == 5 else DIE_ONCE_CAPTION if i == 9 else f"photo {i}"
        members += wds_members(f"{i:03d}", image_bytes(seed=i), caption)
    roots = {name: tmp_path / name for name in ("here", "ray")}
    for root in roots.values():
        write_tar(root / "raw" / "00000.tar", members)
    monkeypatch.setattr(stage, "run_probe", probe_or_die)  # workers import it by name
    marker = tmp_path / "died-once.pid"
    monkeypatch.setenv(DIE_ONCE_ENV, str(marker))
    overrides = ("ingest.sources.0.uri=raw/*.tar", "ingest.batch_size=4", "ingest.shard_max_images=5")

    result = within_deadline(lambda: stage.ingest(config_for(roots["ray"], *overrides, "ingest.workers=2"),
                                                   progress=False))
    assert marker.exists() and int(marker.read_text()) != os.getpid()  # a Ray worker died, not this process
    assert result.ref.rows == 11 and result.ref.quarantined == 1
    dataset = Dataset(str(roots["ray"] / "datasets" / "ingested"))
    row = dataset.read_quarantine().to_pylist()[0]
    assert row["source"] == "raw/00000.tar#005" and row["reason_code"] == "worker_died"
    assert row["sample_id"] == hashlib.sha256(image_bytes(seed=5)).hexdigest() and row["length"] > 0
    assert dataset.read_card()["quarantine_reasons"] == {"worker_died": 1}
    assert not (roots["ray"] / "datasets" / "ingested" / PARTS).exists()

    # the same pool without the culprit, in this process where nothing dies: the same rows and
    # image store (through Ray as in one process, over chunk boundaries), the victim of the
    # single death included
    write_tar(roots["here"] / "raw" / "00000.tar", [m for m in members if not m[0].startswith("005.")])
    monkeypatch.setattr(stage, "run_probe", run_probe)
    stage.ingest(config_for(roots["here"], *overrides), progress=False)
    here, there = roots["here"] / "datasets" / "ingested", roots["ray"] / "datasets" / "ingested"
    assert {k: v for k, v in _md5s(here).items() if k.startswith(("manifest", "shards/"))} == \
        {k: v for k, v in _md5s(there).items() if k.startswith(("manifest", "shards/"))}


CHILD = """
import sys
sys.path.insert(0, {repo!r})
from pathlib import Path
import photogenic.stages.ingest as stage
from tests.conftest import config_for
from tests.support.dying_workers import slower_probe
stage.run_probe = slower_probe
stage.ingest(config_for(Path({root!r}), *{overrides!r}), progress=False)
"""
SHARDS, PER_SHARD = 6, 3


def test_a_killed_ingest_resumes_from_its_finished_input_shards_and_writes_the_same_bytes(tmp_path, monkeypatch):
    roots = {name: tmp_path / name for name in ("clean", "killed")}
    for root in roots.values():
        for n in range(SHARDS):
            write_tar(root / "raw" / f"{n:05d}.tar", [m for i in range(PER_SHARD) for m in wds_members(
                f"{i:03d}", image_bytes(seed=PER_SHARD * n + i), f"photo {n}.{i}")])
    overrides = ["ingest.sources.0.uri=raw/*.tar", "ingest.batch_size=2", "ingest.shard_max_images=4"]
    stage.ingest(config_for(roots["clean"], *overrides), progress=False)
    wanted = _md5s(roots["clean"] / "datasets" / "ingested")

    folder = roots["killed"] / "datasets" / "ingested"
    child = subprocess.Popen([sys.executable, "-c", CHILD.format(
        repo=str(REPO), root=str(roots["killed"]), overrides=[*overrides, "ingest.workers=1"])],
        start_new_session=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    parts = folder / PARTS
    deadline = time.monotonic() + DEADLINE
    while len(list(parts.glob("part-*.parquet"))) < 2 and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(child.pid, signal.SIGKILL)  # the driver and the Ray it started, mid-stage
    child.wait()
    finished = len(list(parts.glob("part-*.parquet")))
    assert 2 <= finished < SHARDS, "the run was to be killed in the middle"
    assert not (folder / "manifest.parquet").exists()  # written once, at the end

    probed = []
    real = stage.run_probe
    monkeypatch.setattr(stage, "run_probe", lambda task: probed.append(task) or real(task))
    stage.ingest(config_for(roots["killed"], *overrides), progress=False)  # resumed in this process
    assert len(probed) == PER_SHARD * (SHARDS - finished)  # only the shards without a part
    assert _md5s(folder) == wanted
