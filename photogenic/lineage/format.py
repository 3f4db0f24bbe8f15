"""Plain-text renderings of the lineage queries (``--json`` gives the data itself)."""

from __future__ import annotations

from typing import Any


def _run(run: dict[str, Any] | None) -> str:
    if not run:
        return "unknown run"
    return " ".join(str(run.get(k) or "") for k in ("runner", "name", "id")).strip()


def format_model_lineage(result: dict[str, Any]) -> str:
    model = result["model"]
    aliases = f" ({', '.join('@' + a for a in model['aliases'])})" if model["aliases"] else ""
    lines = [f"model {model['name']} v{model['version']}{aliases}",
             f"  made by run: {_run(result['made_by_run'])}; MLflow run {model['mlflow_run_id'] or '-'}",
             f"  git commit {result['git_commit'] or 'unknown'}; config md5 {result['config_md5'] or 'unknown'}",
             "  datasets (DVC md5; restore a version with `dvc pull` at the dvc.lock that recorded it):"]
    for name, info in result["datasets"].items():
        current = " (current in dvc.lock)" if info["current_in_dvc_lock"] else ""
        lines.append(f"    {name:<14} {info['dvc_md5']}{current}  {info['rows'] if info['rows'] is not None else '?'} rows")
        for made in info["made_by"]:
            lines.append(f"      made by stage {made['stage']} in {_run(made['run'])} at {made['recorded_at']}, "
                         f"commit {(made['git_commit'] or 'unknown')[:12]}")
        if info["source_shards"]:
            lines.append(f"      source shards: {', '.join(info['source_shards'])}")
        if info["annotators"]:
            lines.append(f"      annotators: {', '.join(info['annotators'])}")
        if not info["manifest_available"]:
            lines.append("      (manifest not in the local DVC cache: `dvc pull` to inspect its samples)")
    lines.append("  inputs read from outside the datasets (sources, annotation exports):")
    lines += [f"    {key:<28} {md5}" for key, md5 in sorted(result["inputs"].items())] or ["    none recorded"]
    return "\n".join(lines)


def format_sample_lineage(result: dict[str, Any]) -> str:
    lines = [f"sample {result['sample_id']}"]
    if not result["datasets"]:
        lines.append("  in no dataset version known here")
    for d in result["datasets"]:
        current = " (current)" if d["current_in_dvc_lock"] else ""
        runs = "; ".join(_run(r) for r in d["runs"]) or "run unknown"
        lines.append(f"  dataset {d['dataset']:<14} {d['dvc_md5']}{current}  made by {runs}")
    for m in result["models"]:
        aliases = f" ({', '.join('@' + a for a in m['aliases'])})" if m["aliases"] else ""
        lines.append(f"  model {m['name']} v{m['version']}{aliases} via {', '.join(m['via'])}")
    if not result["models"]:
        lines.append("  in no registered model version")
    for v in result["versions_not_readable_here"]:
        lines.append(f"  (not checked: {v['dataset']} {v['dvc_md5']} is not in the local DVC cache; `dvc pull` it)")
    return "\n".join(lines)
