"""The versions a dataset was derived from, carried in its own card.

Every derived stage writes, in its dataset card, its input's version (name, the stage that made
it, rows, the manifest's sha256, the DVC md5) followed by the entries of the input's own card:
the whole chain back to ingest, nearest first. The chain travels with the data, so the packaged
training set knows every dataset version behind it on any machine, a cluster pod that pulled
only its input included; the training stages tag their models with it
(photogenic.lineage.tags.lineage_datasets).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from photogenic.dataset.ref import DatasetRef
from photogenic.dataset.store import Dataset
from photogenic.paths import is_url
from photogenic.versioning.dvc import current_md5, find_project


def upstream_entries(source: Dataset, ref: DatasetRef | None = None) -> list[dict[str, Any]]:
    """``source``'s version and its card's chain. ``ref``: the version a runner handed the stage
    (it carries the DVC md5); else the md5 dvc.lock records while it still matches the folder."""
    card = source.read_card()
    own = ref if ref is not None and ref.content_hash else source.ref()
    md5 = ref.dvc_md5 if ref is not None and ref.dvc_md5 else _locked_md5(source)
    entry = {"dataset": source.name, "stage": card.get("stage") or "unknown", "rows": own.rows,
             "content_hash": own.content_hash, "dvc_md5": md5}
    return [entry, *(card.get("upstream") or [])]


def _locked_md5(dataset: Dataset) -> str | None:
    project = find_project(".")
    if project is None or is_url(dataset.path):
        return None
    relative = os.path.relpath(Path(dataset.path).resolve(), project)
    return None if relative.startswith("..") else current_md5(project, relative)
