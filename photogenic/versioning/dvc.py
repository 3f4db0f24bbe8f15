"""Dataset versioning with DVC.

dvc.yaml declares every stage with its deps, params (read from ``params.yaml``, the resolved
run config) and outs. Whichever runner produced a stage's outputs, the version is recorded the
same way: ``dvc commit`` writes the stage's deps/outs md5s to ``dvc.lock`` and puts the outputs
in the DVC cache, and ``dvc push`` copies them to the default remote, so ``dvc pull`` restores
any version whose ``dvc.lock`` is in git. DVC is driven through its command line, its stable
public interface, with the interpreter that runs photogenic.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from photogenic.dataset.atomic import write_text
from photogenic.errors import DataError
from photogenic.safety.secrets import redact, redact_tree

LOCK_FILE = "dvc.lock"
PARAMS_FILE = "params.yaml"


@dataclass(frozen=True)
class OutputVersion:
    path: str
    md5: str
    size: int | None
    nfiles: int | None


def find_project(start: str | Path = ".") -> Path | None:
    """The DVC project folder containing ``start`` (the one with ``.dvc/``), if any."""
    here = Path(start).resolve()
    for folder in (here, *here.parents):
        if (folder / ".dvc").is_dir():
            return folder
    return None


def require_project(start: str | Path = ".") -> Path:
    project = find_project(start)
    if project is None:
        raise DataError(
            f"{Path(start).resolve()} is not inside a DVC project, but dvc.enabled is true. Run the "
            "pipeline from the photogenic project folder, run `dvc init` here, or set dvc.enabled=false."
        )
    return project


#: commands that talk to a remote, and how long they may take (seconds); ``PHOTOGENIC_DVC_TIMEOUT``
#: sets it for a slow link or a large push. Every other command works on local files.
TRANSFERS = ("push", "pull", "fetch")
TRANSFER_TIMEOUT = 3600
LOCAL_TIMEOUT = 600


def command_timeout(args: tuple[str, ...]) -> float:
    if args and args[0] in TRANSFERS:
        value = os.environ.get("PHOTOGENIC_DVC_TIMEOUT", "")
        try:
            return float(value) if value else TRANSFER_TIMEOUT
        except ValueError:
            raise DataError(f"PHOTOGENIC_DVC_TIMEOUT is {value!r}; set it to a number of seconds.") from None
    return LOCAL_TIMEOUT


def run_dvc(project: Path, *args: str) -> str:
    """Run one DVC command in ``project``; a failure is a DataError carrying DVC's message, with
    any credentials in the remote's URL redacted; a command past its time limit is stopped."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    timeout = command_timeout(args)
    # its own process group, so that stopping it stops whatever it started too
    process = subprocess.Popen([sys.executable, "-m", "dvc", *args], cwd=project, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise DataError(redact(f"`dvc {' '.join(args)}` did not finish in {timeout:g} s in {project} and was "
                               "stopped; check the remote is reachable, or set PHOTOGENIC_DVC_TIMEOUT (seconds) for "
                               "a slow transfer.")) from None
    if process.returncode != 0:
        raise DataError(redact(f"`dvc {' '.join(args)}` failed in {project}: {(stderr or stdout).strip()}"))
    return stdout


def commit_stage(project: Path, stage: str, push: bool, allow_missing_deps: bool = False) -> list[OutputVersion]:
    """Record the current outputs of ``stage`` in dvc.lock and the cache (and the remote).

    ``allow_missing_deps``: a cluster pod holds only the datasets it pulled, not every path the
    stage depends on in dvc.yaml (the raw pool, when the sources are elsewhere); the deps it lacks
    are recorded without an md5 (DVC's own ``allow_missing``, which its command line does not offer).
    """
    if allow_missing_deps:
        from dvc.repo import Repo

        # what `dvc commit --force` does, minus the run cache (which would hash the missing deps)
        with Repo(str(project)) as repo, repo.lock:
            for found in repo.stage.collect(stage):
                found.save(allow_missing=True, run_cache=False)
                found.commit(allow_missing=True)
                found.dump(update_pipeline=False)
    else:
        run_dvc(project, "commit", "--force", stage)
    if push:
        run_dvc(project, "push", stage)
    return stage_outputs(project, stage)


def add_folder(project: Path, folder: Path, push: bool) -> str:
    """Version ``folder``, which no dvc.yaml stage writes, with a .dvc file of its own beside it
    (``dvc add``), push it to the default remote when ``push``, and return its DVC md5."""
    rel = os.path.relpath(folder.resolve(), project.resolve())
    run_dvc(project, "add", rel)
    dvc_file = f"{rel}.dvc"
    if push:
        run_dvc(project, "push", dvc_file)
    outs = (yaml.safe_load((project / dvc_file).read_text(encoding="utf-8")) or {}).get("outs", [])
    if not outs or not outs[0].get("md5"):
        raise DataError(f"`dvc add {rel}` wrote no md5 to {dvc_file}")
    return outs[0]["md5"]


def pull_folder(project: Path, folder: Path, md5: str) -> None:
    """Fetch DVC version ``md5`` of ``folder`` from the remote into place, through a .dvc file
    beside it naming that version (what ``dvc add`` wrote where the folder was made)."""

    rel = Path(os.path.relpath(folder.resolve(), project.resolve()))
    write_text(str(project / f"{rel}.dvc"),
               yaml.safe_dump({"outs": [{"md5": md5, "hash": "md5", "path": rel.name}]}, sort_keys=False))
    run_dvc(project, "pull", "--force", f"{rel}.dvc")


def stage_outputs(project: Path, stage: str) -> list[OutputVersion]:
    """The outs of ``stage`` as recorded in dvc.lock (empty if the stage was never recorded)."""
    lock = read_lock(project)
    entry = lock.get("stages", {}).get(stage, {})
    return [
        OutputVersion(path=o["path"], md5=o.get("md5", ""), size=o.get("size"), nfiles=o.get("nfiles"))
        for o in entry.get("outs", [])
    ]


def read_lock(project: Path) -> dict:
    path = project / LOCK_FILE
    if not path.exists():
        return {}
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def locked_md5(project: Path, path: str) -> str | None:
    """The md5 dvc.lock records for output ``path`` (relative to the project), in any stage."""
    wanted = os.path.normpath(path)
    for entry in read_lock(project).get("stages", {}).values():
        for out in entry.get("outs", []):
            if os.path.normpath(out["path"]) == wanted:
                return out.get("md5")
    return None


def write_params(project: Path, resolved: dict) -> bool:
    """Write the resolved run config to params.yaml (what dvc.yaml reads); True if it changed.

    Like ``dvc exp run --set-param``, a run with another config or overrides updates
    params.yaml, so dvc.lock always records the parameters the outputs were really made with.
    params.yaml is tracked by git: a URI's credentials never reach it (the config refuses them;
    this is the last line).
    """

    path = project / PARAMS_FILE
    text = "# The resolved config of the last `photogenic run`; dvc.yaml reads its parameters here.\n"
    text += yaml.safe_dump(redact_tree(resolved), sort_keys=False)
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    write_text(str(path), text)
    return True


def current_md5(project: Path, path: str) -> str | None:
    """The md5 dvc.lock records for the dataset folder ``path`` (relative to the project), but
    only while it still describes the folder: the recorded directory listing in the DVC cache
    must give the folder's manifest the md5 it has now (the manifest names every image by its
    sha256, so it stands for the whole folder). None when unknown or stale."""
    import hashlib
    import json

    md5 = locked_md5(project, path)
    if not md5 or not md5.endswith(".dir"):
        return None
    listing = project / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
    manifest = project / path / "manifest.parquet"
    if not listing.exists() or not manifest.exists():
        return None
    try:
        entries = json.loads(listing.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    recorded = next((e.get("md5") for e in entries if e.get("relpath") == "manifest.parquet"), None)
    return md5 if recorded == hashlib.md5(manifest.read_bytes()).hexdigest() else None
