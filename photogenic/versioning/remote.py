"""The DVC remote as the record a cluster shares: pods come and go with their disks, so what a
later reader needs (the lineage commands on a laptop, a task on another node) must be in the
remote or the tracking server.

- objects by md5, in DVC 3's layout (``files/md5/<2>/<30>``; a folder's ``.dir`` object lists
  its files and their md5s), read straight from the remote with fsspec: one manifest of an old
  version without checking the version out;
- the dataset versions the tasks made: one small JSON object per version and run under
  ``photogenic-versions/<dataset>/``, written once by the task that pushed the version (a PUT
  is atomic, and no two runs write the same object, so concurrent runs lose nothing).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from photogenic.dataset.atomic import filesystem, write_text
from photogenic.paths import join

log = logging.getLogger(__name__)

VERSIONS = "photogenic-versions"


def object_path(base: str, md5: str) -> str:
    """Where object ``md5`` lies in a DVC cache or remote at ``base``."""
    return join(base, "files", "md5", md5[:2], md5[2:])


def read_object(remote: str, md5: str) -> bytes | None:
    fs, path = filesystem(object_path(remote, md5))
    try:
        return fs.cat_file(path)
    except FileNotFoundError:
        return None


def read_version_file(remote: str, dir_md5: str, relpath: str) -> bytes | None:
    """The file ``relpath`` of the folder version ``dir_md5`` (a ``.dir`` md5), from the remote."""
    listing = read_object(remote, dir_md5)
    if listing is None:
        return None
    entry = next((e for e in json.loads(listing) if e.get("relpath") == relpath), None)
    return read_object(remote, entry["md5"]) if entry else None


def publish_version(remote: str, entry: dict[str, Any]) -> str:
    """Record a dataset version (a versions-log entry) in the remote; returns where."""
    run_id = str((entry.get("run") or {}).get("id") or entry.get("recorded_at") or "unknown")
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)
    path = join(remote, VERSIONS, entry["dataset"], f"{entry['dvc_md5']}--{safe}.json")
    write_text(path, json.dumps(entry, sort_keys=True) + "\n")
    return path


def read_published_versions(remote: str) -> list[dict[str, Any]]:
    """Every version record in the remote, oldest first."""
    fs, root = filesystem(join(remote, VERSIONS))
    if not fs.exists(root):
        return []
    entries = []
    for path in sorted(fs.find(root)):
        if path.endswith(".json"):
            try:
                entries.append(json.loads(fs.cat_file(path)))
            except (ValueError, OSError) as exc:  # a record half-written by a killed writer: skip it, say so
                log.warning("unreadable version record %s in the DVC remote: %s", path, exc)
    return sorted(entries, key=lambda e: e.get("recorded_at") or "")
