"""Two runs on one data root: the second waits or refuses, naming the holder, and loses nothing of
the first's; versions recorded at once all survive."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from photogenic.dataset.lock import LOCK_NAME, data_root_lock
from photogenic.dataset.ref import DatasetRef
from photogenic.dataset.store import Dataset
from photogenic.errors import LockedError
from photogenic.stages.runner import run_stage
from photogenic.versioning.log import read_versions, record_version
from tests.conftest import REPO, config_for, image_bytes, wds_members, write_tar

HOLDER = """
import sys, time
from photogenic.dataset.lock import data_root_lock
with data_root_lock(sys.argv[1], "a test holder"):
    print("locked", flush=True)
    sys.stdin.read()  # until the test closes stdin (or kills it)
"""

SLOW_INGEST = """
import sys
import photogenic.stages.ingest as ingest_module
from tests.support.dying_workers import slow_probe
from photogenic.config import load_config
from photogenic.stages.runner import run_stage
ingest_module.run_probe = slow_probe
config = load_config(None, [f"data.root={sys.argv[1]}", "ingest.workers=0", "ingest.sources.0.uri=raw/*.tar",
                            "ingest.shard_max_images=10"])
print(run_stage("ingest", config, progress=False).ref.rows, flush=True)
"""


def _python(code: str, *args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, **kwargs)


def _pool(root: Path, n: int, first: int = 0) -> None:
    members = []
    for i in range(first, first + n):
        members += wds_members(f"{i:05d}", image_bytes(seed=i), f"photo {i}")
    write_tar(root / "raw" / f"{first:05d}.tar", members)


def _wait_for_holder(root: Path, deadline: float = 60) -> dict:
    path = root / LOCK_NAME
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if path.exists() and path.read_text().strip():
            return json.loads(path.read_text())
        time.sleep(0.02)
    raise AssertionError("the first run never took the lock")


def test_a_second_ingest_refuses_naming_the_first_and_the_first_loses_nothing(tmp_path):
    root = tmp_path / "data"
    _pool(root, 40)
    first = _python(SLOW_INGEST, str(root), cwd=tmp_path)
    holder = _wait_for_holder(root)
    assert holder["pid"] == first.pid
    with pytest.raises(LockedError) as refused:
        run_stage("ingest", config_for(root, "ingest.sources.0.uri=raw/*.tar"), progress=False)
    message = str(refused.value)
    assert f"process {first.pid} on host {socket.gethostname()}" in message and "stage ingest" in message
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert out.strip() == "40"  # the first run finished whole: its shards were not taken from under it
    # now free: the second run finds everything recorded and adds nothing
    again = run_stage("ingest", config_for(root, "ingest.sources.0.uri=raw/*.tar"), progress=False)
    assert again.ref.rows == 40 and again.stats["added"] == 0
    dataset = Dataset(str(root / "datasets" / "ingested"))
    assert sorted(p.name for p in Path(dataset.shards_dir).iterdir()) == [f"shard-{i:06d}.tar" for i in range(4)]


def test_waiting_for_the_lock_and_a_killed_holder(tmp_path, monkeypatch):
    root = tmp_path / "data"
    holder = _python(HOLDER, str(root), stdin=subprocess.PIPE)
    assert holder.stdout.readline().strip() == "locked"
    monkeypatch.setenv("PHOTOGENIC_LOCK_WAIT", "30")
    started = time.monotonic()
    release = multiprocessing.get_context("spawn").Process(target=_close_after, args=(holder.pid, 1.0))
    release.start()
    with data_root_lock(str(root), "the waiting run"):  # waits until the holder is killed
        assert time.monotonic() - started >= 0.9
        assert json.loads((root / LOCK_NAME).read_text())["pid"] == os.getpid()
    release.join()
    holder.wait(timeout=10)
    assert holder.returncode == -signal.SIGKILL  # killed while holding: the kernel released its lock


FORKING_HOLDER = """
import os, signal, sys, time
from photogenic.dataset.lock import data_root_lock
with data_root_lock(sys.argv[1], "a holder with a worker"):
    ready, started = os.pipe()
    child = os.fork()
    if child == 0:  # a worker (a DataLoader's, a decode pool's) that outlives its parent
        with data_root_lock(sys.argv[1], "the worker"):  # inside its parent's lock: no wait
            os.write(started, b"1")
            time.sleep(60)
        os._exit(0)
    os.read(ready, 1)
    print(child, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # the out-of-memory killer, a node going away
"""


def test_a_worker_that_outlives_its_killed_parent_does_not_keep_the_lock(tmp_path):
    root = tmp_path / "data"
    holder = _python(FORKING_HOLDER, str(root))
    worker = int(holder.stdout.readline())
    try:
        assert holder.wait(timeout=30) == -signal.SIGKILL
        os.kill(worker, 0)  # still running
        with data_root_lock(str(root), "the resumed run"):  # at once: the worker holds nothing
            assert json.loads((root / LOCK_NAME).read_text())["pid"] == os.getpid()
    finally:
        os.kill(worker, signal.SIGKILL)


def _close_after(pid: int, seconds: float) -> None:
    time.sleep(seconds)
    os.kill(pid, signal.SIGKILL)


def test_the_lock_is_reentrant_in_one_process_and_free_after(tmp_path):
    root = str(tmp_path / "data")
    with data_root_lock(root, "outer"):
        with data_root_lock(root, "inner"):
            pass
        holder = _python(HOLDER, root, stdin=subprocess.PIPE)
        _, err = holder.communicate(timeout=60)
        assert holder.returncode != 0 and "is in use" in err and str(os.getpid()) in err
    holder = _python(HOLDER, root, stdin=subprocess.PIPE)
    assert holder.stdout.readline().strip() == "locked"
    holder.communicate("", timeout=60)


def _record_many(root: str, worker: int, n: int) -> None:
    for i in range(n):
        ref = DatasetRef(name=f"d{worker}", path=f"{root}/datasets/d{worker}", manifest="m", content_hash=f"{i}",
                         rows=i)
        record_version(root, ref, "test", {"runner": "test", "id": f"{worker}-{i}"})


def test_concurrent_runs_keep_every_version_entry(tmp_path):
    root = str(tmp_path / "data")
    os.makedirs(root)
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_record_many, args=(root, w, 15)) for w in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    ids = sorted(v["run"]["id"] for v in read_versions(root))
    assert ids == sorted(f"{w}-{i}" for w in range(4) for i in range(15))
