"""Making sure the dataset a DatasetRef names is on disk, restoring it from DVC when not.

A cached ZenML step does not run, so it does not write its dataset: when the folder was deleted
(or replaced by another version, e.g. by a `dvc repro` with other parameters) the cached ref
points at nothing. Every ref carries its DVC md5, so the version it names is restored from DVC:
``dvc checkout``/``dvc pull`` when dvc.lock records that very version, else straight from the
DVC cache by md5 (DVC 3's cache layout: ``files/md5/<2>/<30>``, a ``.dir`` object listing the
folder's files). The restored folder is checked against the ref's content hash.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
from pathlib import Path

from photogenic.dataset.atomic import write_text
from photogenic.dataset.ref import DatasetRef
from photogenic.dataset.store import Dataset
from photogenic.errors import DataError
from photogenic.paths import is_url
from photogenic.versioning.dvc import locked_md5, pull_folder, read_lock, require_project, run_dvc
from photogenic.versioning.remote import object_path

log = logging.getLogger(__name__)


def is_present(ref: DatasetRef) -> bool:
    dataset = Dataset(ref.path)
    return dataset.exists() and dataset.ref().content_hash == ref.content_hash


def ensure_dataset(ref: DatasetRef, project: Path | None = None, stage: str | None = None,
                   dvc_file: bool = False) -> str:
    """Return "present" if the dataset on disk is the version ``ref`` names, "restored" after
    restoring it from DVC; raise DataError when it can be neither found nor restored.

    ``stage`` (the dvc.yaml stage that writes the dataset) lets a version that is neither in
    dvc.lock nor in the cache come from the DVC remote: it is recorded as that stage's output in
    dvc.lock and pulled, as on a cluster node whose image knows nothing of this run's versions.
    ``dvc_file``: no dvc.yaml stage writes the dataset, its version lives in a .dvc file of its
    own (photogenic.versioning.record.version_untracked); it is pulled through one."""
    if is_present(ref):
        return "present"
    if not ref.dvc_md5:
        raise DataError(
            f"Dataset {ref.name!r} at {ref.path} is missing or is another version than the one this run "
            "refers to, and that version was never versioned with DVC, so it cannot be restored. Rerun "
            "without the step cache (`photogenic run --no-cache`)."
        )
    if is_url(ref.path):
        raise DataError(f"Dataset {ref.name!r} at {ref.path} is missing or another version than this run refers to; "
                        f"restore DVC version {ref.dvc_md5} there with `dvc pull` on a machine that holds the project.")
    project = project or require_project(".")
    rel = os.path.relpath(Path(ref.path).resolve(), project)
    if locked_md5(project, rel) == ref.dvc_md5:
        try:
            run_dvc(project, "checkout", "--force", rel)
        except DataError:
            run_dvc(project, "pull", "--force", rel)
    elif _object(_cache_dir(project), ref.dvc_md5).exists() or (stage is None and not dvc_file):
        _checkout_from_cache(project, ref.dvc_md5, Path(ref.path))
    elif dvc_file:
        pull_folder(project, Path(ref.path), ref.dvc_md5)
    else:
        record_locked_output(project, stage, rel, ref.dvc_md5)
        run_dvc(project, "pull", "--force", rel)
    if not is_present(ref):
        raise DataError(f"Restoring dataset {ref.name!r} (DVC md5 {ref.dvc_md5}) from DVC did not give back its "
                        f"content (manifest sha256 {ref.content_hash}).")
    log.info("restored dataset %s (DVC md5 %s) from DVC", ref.name, ref.dvc_md5)
    return "restored"


def record_locked_output(project: Path, stage: str, path: str, md5: str) -> None:
    """Write ``md5`` as the version of ``stage``'s output ``path`` in dvc.lock (what `dvc pull` reads)."""
    import yaml

    lock = read_lock(project) or {"schema": "2.0", "stages": {}}
    entry = lock.setdefault("stages", {}).setdefault(stage, {"cmd": f"photogenic step {stage}"})
    outs = [o for o in entry.get("outs", []) if os.path.normpath(o["path"]) != os.path.normpath(path)]
    entry["outs"] = [*outs, {"path": path, "hash": "md5", "md5": md5}]
    write_text(str(project / "dvc.lock"), yaml.safe_dump(lock, sort_keys=False))


@functools.lru_cache(maxsize=8)
def _cache_dir(project: Path) -> Path:
    configured = run_dvc(project, "cache", "dir").strip()
    return Path(configured) if configured else project / ".dvc" / "cache"


def cache_object(project: Path, md5: str) -> Path | None:
    """The DVC cache file holding object ``md5`` (a file, or a folder's ``.dir`` listing), if cached."""
    path = _object(_cache_dir(project), md5)
    return path if path.exists() else None


def _object(cache: Path, md5: str) -> Path:
    return Path(object_path(str(cache), md5))


def _checkout_from_cache(project: Path, md5: str, target: Path) -> None:
    cache = _cache_dir(project)
    listing = _object(cache, md5)
    if not listing.exists():
        raise DataError(
            f"DVC version {md5} of {target} is neither what dvc.lock records nor in the DVC cache {cache}. "
            "Check out the dvc.lock that recorded it (`git log -- dvc.lock`) and run `dvc pull`."
        )
    entries = json.loads(listing.read_text(encoding="utf-8"))
    staging = target.with_name(f".{target.name}.restoring")
    shutil.rmtree(staging, ignore_errors=True)
    for entry in entries:
        dest = staging / entry["relpath"]
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_object(cache, entry["md5"]), dest)
    # the whole folder swaps in at once: never half an old and half a new version
    backup = target.with_name(f".{target.name}.replaced")
    shutil.rmtree(backup, ignore_errors=True)
    if target.exists():
        target.rename(backup)
    staging.rename(target)
    shutil.rmtree(backup, ignore_errors=True)
