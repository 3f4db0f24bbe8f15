"""Running a pipeline on the active ZenML stack, as ``photogenic run`` does."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from zenml import log_metadata
from zenml.client import Client

from photogenic.config import RunConfig
from photogenic.errors import ConfigError
from photogenic.quality import GateResult
from photogenic.versioning.dvc import require_project, write_params
from pipelines.data_curation import data_curation

PIPELINES = {"data_curation": data_curation}


def run_pipeline(name: str, config: RunConfig, config_path: Path | None = None, progress: bool = True) -> str:
    """Run pipeline ``name`` with ``config``; return a summary of what it produced and where."""
    if name not in PIPELINES:
        raise ConfigError(f"Unknown pipeline {name!r}; the pipelines are: {', '.join(PIPELINES)}.")
    resolved = config.resolved()
    if config.dvc.enabled:
        # dvc.yaml reads its params (and output paths) from params.yaml: keep it the config we run
        write_params(require_project("."), resolved)
    _ensure_zenml_repository(Path.cwd())
    run_name = f"{name}-{dt.datetime.now().strftime('%Y%m%d-%H%M%S-%f')}"
    try:
        run = PIPELINES[name].with_options(run_name=run_name)(config=resolved, progress=progress)
    except RuntimeError:
        _raise_gate_failure(run_name)
        raise
    finally:
        log_metadata(metadata={"config": resolved, "config_file": str(config_path or "")},
                     run_id_name_or_prefix=run_name)
    return _summary(run)


def _raise_gate_failure(run_name: str) -> None:
    """ZenML reports a failed step generically; when it was a quality gate, raise the gate's own
    message (which expectations failed, where the Data Docs are) as a QualityGateError."""
    run = Client().get_pipeline_run(run_name)
    for step_name, step_run in run.steps.items():
        meta = step_run.run_metadata.get("quality_gate")
        if step_run.status.value == "failed" and meta:
            GateResult.from_dict(meta).raise_for_failure()


def _ensure_zenml_repository(root: Path) -> None:
    """``zenml init`` once, so ZenML resolves step sources relative to the project."""
    if not (root / ".zen").is_dir():
        Client.initialize(root=root)


def _summary(run) -> str:
    run = Client().get_pipeline_run(run.id)
    lines = [f"ZenML run {run.name} ({run.id}): {run.status.value}"]
    gate_reports = [
        step_run.run_metadata["quality_gate"].get("docs_index")
        for step_run in run.steps.values() if "quality_gate" in step_run.run_metadata
    ]
    for step_run in run.steps.values():
        for artifact in step_run.outputs.get("versioned_dataset", []):
            ref = artifact.load()
            lines += [
                f"  dataset {ref.name}: {ref.rows} rows, {ref.quarantined} quarantined, at {ref.path}",
                f"    DVC md5 {ref.dvc_md5 or 'not versioned (dvc.enabled=false)'}"
                + ("; restore with `dvc pull`" if ref.dvc_md5 else ""),
            ]
    lines += [f"  quality gate report: {path}" for path in gate_reports if path]
    lines.append("  browse runs: `zenml login --local` (needs zenml[server]); versions: `photogenic data ls`")
    return "\n".join(lines)
