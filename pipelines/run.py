"""Running a pipeline on the active ZenML stack, as ``photogenic run`` does."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from zenml import log_metadata
from zenml.client import Client

from photogenic.config import RunConfig
from photogenic.errors import ConfigError
from photogenic.stages.runner import quality_dir
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
    run = PIPELINES[name].with_options(run_name=run_name)(config=resolved, progress=progress)
    log_metadata(metadata={"config": resolved, "config_file": str(config_path or "")}, run_id_name_or_prefix=run.id)
    return _summary(run)


def _ensure_zenml_repository(root: Path) -> None:
    """``zenml init`` once, so ZenML resolves step sources relative to the project."""
    if not (root / ".zen").is_dir():
        Client.initialize(root=root)


def _summary(run) -> str:
    run = Client().get_pipeline_run(run.id)
    lines = [f"ZenML run {run.name} ({run.id}): {run.status.value}"]
    for step_name, step_run in run.steps.items():
        for output_name, artifacts in step_run.outputs.items():
            if output_name != "versioned_dataset":
                continue
            ref = artifacts[0].load()
            lines += [
                f"  dataset {ref.name}: {ref.rows} rows, {ref.quarantined} quarantined, at {ref.path}",
                f"    DVC md5 {ref.dvc_md5 or 'not versioned (dvc.enabled=false)'}"
                + ("; restore with `dvc pull`" if ref.dvc_md5 else ""),
                f"    quality gate report: {quality_dir(ref)}/index.html",
            ]
    lines.append("  browse runs: `zenml login --local` (needs zenml[server]); versions: `photogenic data ls`")
    return "\n".join(lines)
