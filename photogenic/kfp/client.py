"""Uploading the compiled pipeline to a Kubeflow Pipelines server and scheduling it.

``upload`` creates the pipeline the first time and a new version of it afterwards, so the KFP
UI's "Create run" form always offers the latest (and every earlier) version with its run
parameters. ``schedule`` creates a recurring run: a 6-field cron (KFP's cron has seconds),
no catch-up of missed runs, at most one run at a time. The client is any object with kfp.Client's
methods (tests pass a stand-in; the CLI builds a real one from ``--host``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from photogenic.errors import ConfigError
from photogenic.versioning.log import git_commit

DEFAULT_EXPERIMENT = "photogenic"


def upload(client: Any, package_path: str, pipeline_name: str, version_name: str | None = None,
           description: str = "") -> dict[str, str]:
    """Create pipeline ``pipeline_name`` from ``package_path``, or add a version to it."""
    version_name = version_name or default_version_name()
    pipeline_id = client.get_pipeline_id(pipeline_name)
    if pipeline_id is None:
        pipeline = client.upload_pipeline(package_path, pipeline_name=pipeline_name, description=description)
        return {"pipeline_id": pipeline.pipeline_id, "version_id": _latest_version_id(client, pipeline.pipeline_id),
                "created": "pipeline"}
    version = client.upload_pipeline_version(package_path, pipeline_version_name=version_name,
                                             pipeline_id=pipeline_id, description=description)
    return {"pipeline_id": pipeline_id, "version_id": version.pipeline_version_id, "created": "version"}


def _latest_version_id(client: Any, pipeline_id: str) -> str | None:
    listing = client.list_pipeline_versions(pipeline_id=pipeline_id, sort_by="created_at desc", page_size=1)
    versions = getattr(listing, "pipeline_versions", None) or []
    return versions[0].pipeline_version_id if versions else None


def default_version_name() -> str:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    commit = git_commit()
    return f"{stamp}-{commit[:12]}" if commit else stamp


def check_cron(cron: str) -> str:
    fields = cron.split()
    if len(fields) != 6:
        hint = f" (did you mean '0 {cron}'?)" if len(fields) == 5 else ""
        raise ConfigError(
            f"The schedule {cron!r} has {len(fields)} fields; Kubeflow Pipelines takes a 6-field cron "
            f"(seconds minutes hours day-of-month month day-of-week){hint}."
        )
    return cron


def schedule(client: Any, pipeline_name: str, cron: str, job_name: str, params: dict[str, Any] | None = None,
             experiment: str = DEFAULT_EXPERIMENT, version_id: str | None = None) -> dict[str, str]:
    """A recurring run of the pipeline's latest version (or ``version_id``). Scheduled retraining
    runs the stages only when the sources or annotation exports changed since the champion
    (``only_if_changed``, the pipeline's first task decides), unless ``params`` says otherwise."""
    params = {"only_if_changed": True, **(params or {})}
    check_cron(cron)
    pipeline_id = client.get_pipeline_id(pipeline_name)
    if pipeline_id is None:
        raise ConfigError(f"No pipeline {pipeline_name!r} on the server: run `photogenic kfp upload` first.")
    version_id = version_id or _latest_version_id(client, pipeline_id)
    experiment_id = client.create_experiment(experiment).experiment_id  # returns the existing one by name
    run = client.create_recurring_run(
        experiment_id=experiment_id, job_name=job_name, cron_expression=cron, max_concurrency=1,
        no_catchup=True, pipeline_id=pipeline_id, version_id=version_id, params=params, enabled=True,
    )
    return {"recurring_run_id": run.recurring_run_id, "pipeline_id": pipeline_id, "version_id": version_id or "",
            "experiment_id": experiment_id}
