"""The project's record of dataset versions: which run made which version of which dataset.

DVC's lock file knows the current md5 of every output; this log keeps the history and ties each
version to the run that produced it (runner, run id and name, git commit), which is what
``photogenic data ls`` shows and what lineage queries start from. One JSON object per line in
``<data root>/versions.jsonl``; the file is rewritten atomically on every record, under the data
folder's lock, so that two runs recording at once both keep their entries.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from pathlib import Path
from typing import Any

from photogenic.dataset.atomic import filesystem, write_text
from photogenic.dataset.lock import data_root_lock
from photogenic.dataset.ref import DatasetRef
from photogenic.paths import join

LOG_NAME = "versions.jsonl"
RECORD_WAIT = 30.0


def log_path(data_root: str) -> str:
    return join(data_root, LOG_NAME)


def read_versions(data_root: str) -> list[dict[str, Any]]:
    fs, path = filesystem(log_path(data_root))
    if not fs.exists(path):
        return []
    lines = fs.cat_file(path).decode("utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def record_version(data_root: str, ref: DatasetRef, stage: str, run: dict[str, Any]) -> dict[str, Any]:
    entry = {
        "dataset": ref.name,
        "stage": stage,
        "dvc_md5": ref.dvc_md5,
        "content_hash": ref.content_hash,
        "rows": ref.rows,
        "quarantined": ref.quarantined,
        "path": ref.path,
        "run": run,
        "git_commit": git_commit(),
        "recorded_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    # a moment's wait: another run may be recording its own version just now
    with data_root_lock(data_root, f"recording a version of {ref.name}", wait=RECORD_WAIT):
        lines = [json.dumps(v, sort_keys=True) for v in read_versions(data_root)]
        lines.append(json.dumps(entry, sort_keys=True))
        write_text(log_path(data_root), "\n".join(lines) + "\n")
    return entry


#: the commit the project image was built from (``make image`` bakes it in: the image has no .git)
IMAGE_COMMIT = "GIT_COMMIT"


def git_commit(cwd: str | Path = ".") -> str | None:
    """The checked-out commit; in the project image, which holds no .git, the commit it was
    built from; else None."""
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        done = None
    if done is not None and done.returncode == 0 and done.stdout.strip():
        return done.stdout.strip()
    baked = os.environ.get(IMAGE_COMMIT, "").strip()
    return baked if baked and baked != "unknown" else None
