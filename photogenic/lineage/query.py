"""Joining the lineage records: MLflow model version tags (photogenic.lineage.tags), the
versions log (data/versions.jsonl: which run made which dataset version), dvc.lock (what is
current) and the datasets' manifests (which sample is in which version; old versions are read
from the DVC cache by md5, without checking them out).

On a cluster the pods that made the versions are gone with their disks: given the DVC remote
(``remote``), the version records the tasks published there and the manifests stored there by
md5 answer the same questions from any machine that reaches the remote and the tracking server
(photogenic.versioning.remote)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from photogenic.errors import ConfigError
from photogenic.lineage.tags import read_tags
from photogenic.paths import dataset_dir
from photogenic.versioning.dvc import find_project, locked_md5
from photogenic.versioning.log import read_versions
from photogenic.versioning.remote import read_published_versions, read_version_file
from photogenic.versioning.restore import cache_object

MANIFEST = "manifest.parquet"


# -- models ---------------------------------------------------------------------------------------

def resolve_model_version(client: Any, spec: str) -> Any:
    """``NAME`` (latest version), ``NAME@VERSION`` or ``NAME@ALIAS`` -> MLflow ModelVersion."""
    from mlflow.exceptions import MlflowException

    name, sep, which = spec.partition("@")
    try:
        if not sep:
            versions = client.search_model_versions(f"name='{name}'")
            if not versions:
                raise ConfigError(f"Registered model {name!r} has no versions in {_tracking()}.")
            return max(versions, key=lambda v: int(v.version))
        if which.isdigit():
            return client.get_model_version(name, which)
        return client.get_model_version_by_alias(name, which)
    except MlflowException as exc:
        raise ConfigError(f"No model version {spec!r} in the MLflow registry at {_tracking()}: {exc.message}") from None


def _tracking() -> str:
    import mlflow

    return mlflow.get_tracking_uri()


def model_lineage(spec: str, data_root: str, client: Any = None, remote: str | None = None) -> dict[str, Any]:
    from mlflow import MlflowClient

    client = client or MlflowClient()
    version = resolve_model_version(client, spec)
    lineage = read_tags(dict(version.tags))
    if not lineage["datasets"]:
        raise ConfigError(f"Model version {version.name} v{version.version} carries no photogenic lineage tags "
                          "(photogenic.dvc_md5.<dataset>): it was registered without them.")
    project = find_project(".")
    log = _versions(data_root, remote)
    datasets = {}
    for name, md5 in sorted(lineage["datasets"].items()):
        made_by = [v for v in log if v["dataset"] == name and v.get("dvc_md5") == md5]
        manifest = read_manifest_version(project, data_root, name, md5, columns=None, remote=remote)
        datasets[name] = {
            "dvc_md5": md5,
            "rows": lineage["rows"].get(name),
            "current_in_dvc_lock": _locked_md5(project, data_root, name) == md5,
            "made_by": [{"stage": v.get("stage"), "run": v.get("run"), "git_commit": v.get("git_commit"),
                         "recorded_at": v.get("recorded_at")} for v in made_by],
            "manifest_available": manifest is not None,
            "source_shards": _source_shards(manifest),
            "annotators": _annotators(manifest),
        }
    runs = {json.dumps(r["run"], sort_keys=True): r["run"] for d in datasets.values() for r in d["made_by"] if r["run"]}
    return {
        "model": {"name": version.name, "version": str(version.version), "aliases": list(getattr(version, "aliases", []) or []),
                  "mlflow_run_id": version.run_id, "source": version.source},
        "made_by_run": lineage["run"],
        "git_commit": lineage["git_commit"],
        "config_md5": lineage["config_md5"],
        "datasets": datasets,
        "inputs": lineage["inputs"],  # sources and annotation exports, by stage
        "dataset_runs": list(runs.values()),
    }


def _source_shards(manifest) -> list[str]:
    if manifest is None or "sources" not in manifest.column_names:
        return []
    shards = {s.split("#", 1)[0] for group in manifest.column("sources").to_pylist() for s in (group or [])}
    return sorted(shards)


def _annotators(manifest) -> list[str]:
    """Distinct values of annotator columns a curation stage recorded (any column named *annotator*)."""
    if manifest is None:
        return []
    found: set[str] = set()
    for column in manifest.column_names:
        if "annotator" in column:
            for value in manifest.column(column).to_pylist():
                found.update(value if isinstance(value, list) else [value] if value else [])
    return sorted(str(v) for v in found)


# -- samples --------------------------------------------------------------------------------------

def sample_lineage(sample_id: str, data_root: str, client: Any = None, remote: str | None = None) -> dict[str, Any]:
    """Every dataset version (recorded in versions.jsonl or the remote, or current in dvc.lock)
    holding ``sample_id``, and every registered model version made from one of them."""
    from mlflow import MlflowClient

    project = find_project(".")
    known: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in _versions(data_root, remote):
        if entry.get("dvc_md5"):
            known.setdefault((entry["dataset"], entry["dvc_md5"]), {"runs": []})["runs"].append(entry.get("run"))
    for name in _dataset_names(data_root):
        md5 = _locked_md5(project, data_root, name)
        if md5:
            known.setdefault((name, md5), {"runs": []})
    datasets, unreadable = [], []
    for (name, md5), info in sorted(known.items()):
        manifest = read_manifest_version(project, data_root, name, md5, columns=["sample_id"], remote=remote)
        if manifest is None:
            unreadable.append({"dataset": name, "dvc_md5": md5})
        elif sample_id in set(manifest.column("sample_id").to_pylist()):
            datasets.append({"dataset": name, "dvc_md5": md5, "runs": [r for r in info["runs"] if r],
                             "current_in_dvc_lock": _locked_md5(project, data_root, name) == md5})
    holding = {(d["dataset"], d["dvc_md5"]) for d in datasets}
    client = client or MlflowClient()
    models = []
    for registered in client.search_registered_models():
        for version in client.search_model_versions(f"name='{registered.name}'"):
            used = read_tags(dict(version.tags))["datasets"]
            hits = sorted(name for name, md5 in used.items() if (name, md5) in holding)
            if hits:
                models.append({"name": version.name, "version": str(version.version),
                               "aliases": list(getattr(version, "aliases", []) or []), "via": hits})
    return {"sample_id": sample_id, "datasets": datasets, "models": models,
            "versions_not_readable_here": unreadable}


def _dataset_names(data_root: str) -> list[str]:
    folder = Path(dataset_dir(data_root, ""))
    return sorted(p.name for p in folder.iterdir() if (p / MANIFEST).exists()) if folder.is_dir() else []


def _locked_md5(project: Path | None, data_root: str, name: str) -> str | None:
    if project is None:
        return None

    try:
        rel = Path(dataset_dir(data_root, name)).resolve().relative_to(project)
    except ValueError:
        return None
    return locked_md5(project, str(rel))


def _versions(data_root: str, remote: str | None) -> list[dict[str, Any]]:
    """The versions log here and the version records in the remote, each entry once."""
    entries = read_versions(data_root) + (read_published_versions(remote) if remote else [])
    unique = {json.dumps(e, sort_keys=True): e for e in entries}
    return list(unique.values())


def read_manifest_version(project: Path | None, data_root: str, name: str, md5: str, columns=None,
                          remote: str | None = None):
    """The manifest of version ``md5`` of dataset ``name``: from the DVC cache, from the dataset
    folder when that is the version dvc.lock records, or from the remote. None when none has it."""
    if project is not None:
        listing = cache_object(project, md5)
        if listing is not None:
            entry = next((e for e in json.loads(listing.read_text(encoding="utf-8")) if e["relpath"] == MANIFEST), None)
            path = cache_object(project, entry["md5"]) if entry else None
            if path is not None:
                return pq.read_table(path, columns=columns)
    folder = Path(dataset_dir(data_root, name))
    if (folder / MANIFEST).exists() and _locked_md5(project, data_root, name) == md5:
        return pq.read_table(folder / MANIFEST, columns=columns)
    data = read_version_file(remote, md5, MANIFEST) if remote else None
    return pq.read_table(io.BytesIO(data), columns=columns) if data is not None else None

