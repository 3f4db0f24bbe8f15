"""The catalogue behind ``photogenic data ls``: every dataset folder, its current DVC md5 and
its recorded versions with the runs that made them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from photogenic.dataset.atomic import filesystem
from photogenic.dataset.store import Dataset
from photogenic.paths import datasets_dir, join
from photogenic.versioning.dvc import find_project, locked_md5
from photogenic.versioning.log import read_versions


def catalog(data_root: str) -> list[dict[str, Any]]:
    versions = read_versions(data_root)
    project = find_project(".")
    fs, root = filesystem(datasets_dir(data_root))
    names = sorted(p.rsplit("/", 1)[-1] for p in fs.ls(root, detail=False) if fs.isdir(p)) if fs.exists(root) else []
    rows = []
    for name in names:
        dataset = Dataset(join(datasets_dir(data_root), name))
        if not dataset.exists():
            continue
        ref = dataset.ref()
        current = _locked(project, dataset.path)
        history = [v for v in versions if v["dataset"] == name]
        rows.append({
            "dataset": name,
            "path": dataset.path,
            "rows": ref.rows,
            "quarantined": ref.quarantined,
            "content_hash": ref.content_hash,
            "dvc_md5": current,
            "versions": history,
        })
    return rows


def _locked(project: Path | None, path: str) -> str | None:
    """The md5 dvc.lock records for a dataset folder, if it lies inside the DVC project."""
    if project is None:
        return None
    try:
        return locked_md5(project, str(Path(path).resolve().relative_to(project)))
    except ValueError:  # a dataset outside the project (another folder, a URL): DVC can't know it
        return None


def format_catalog(rows: list[dict[str, Any]]) -> str:
    """One line per dataset version (DVC md5): its size, the run that first made it, and how
    many later runs reproduced it."""
    if not rows:
        return "No datasets yet. `make demo` or `photogenic run` makes some."
    lines = [f"{'dataset':<16} {'version (dvc md5)':<38} {'rows':>8} {'quar.':>6}  made by"]
    for row in rows:
        for version, runs in _group_by_version(row):
            first = runs[0].get("run") or {}
            made_by = f"{first.get('runner', '?')} {first.get('name', '')} {first.get('id', '')}".strip()
            if len(runs) > 1:
                made_by += f" (+{len(runs) - 1} later run{'s' if len(runs) > 2 else ''} reproduced it)"
            md5 = version or "not versioned"
            current = " *" if version and version == row["dvc_md5"] else ""
            lines.append(
                f"{row['dataset']:<16} {md5 + current:<38} {runs[0]['rows']:>8} {runs[0]['quarantined']:>6}  "
                f"{made_by if runs[0].get('run') else 'unknown (not in versions.jsonl)'}"
            )
    lines.append("* = the version dvc.lock records now")
    return "\n".join(lines)


def _group_by_version(row: dict[str, Any]) -> list[tuple[str | None, list[dict[str, Any]]]]:
    groups: dict[str | None, list[dict[str, Any]]] = {}
    for version in row["versions"]:
        groups.setdefault(version.get("dvc_md5"), []).append(version)
    if not groups:  # a dataset made outside any recorded run (e.g. by `dvc repro`)
        groups[row["dvc_md5"]] = [{"rows": row["rows"], "quarantined": row["quarantined"]}]
    return list(groups.items())
