"""A data-plane stage of a runner that keeps its datasets on its own disk (the ZenML steps, with
``photogenic run --ray-job IMAGE``), run as a KubeRay RayJob instead of in the runner's process.

The job's driver is the KFP stage task (photogenic.kfp.task) that ``photogenic kfp compile --ray``
launches the same way (photogenic.kfp.rayjob.StageJob): it pulls its inputs from the DVC remote
by md5, runs the stage and its quality gate on the job's Ray cluster, versions and pushes the
output, and reports it. So the launcher hands it, through the job's folder in the object store:

- the run's config as YAML (the config refuses credentials, so none travel; the object store's
  come from the Secret the job's pods take), ``data.root`` relative to the project, as in the image;
- the input dataset, and the datasets its rows' images lie in, as an upstream report: each by
  the DVC md5 it was versioned with here (data/versions.jsonl);
- the project's default DVC remote, which must be an object store both sides reach.

It then pulls the output dataset by the md5 the job reported, so the steps after it (gate,
versioning, the next stage) find it on disk as after a local run, and returns the stage's output
with the counts and reports the job wrote (their HTML stays in the object store).
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
from pathlib import Path
from typing import Any

from photogenic.config import RunConfig, dump_config
from photogenic.dataset.atomic import read_text, write_text
from photogenic.dataset.ref import DatasetRef
from photogenic.dataset.store import Dataset
from photogenic.errors import ConfigError, DataError
from photogenic.kfp.rayjob import RAY_STAGES, RayJobOptions, StageJob
from photogenic.kfp.task import DETAILS, pointed_into, ref_path, remote_url, task_report
from photogenic.paths import dataset_dir, is_url
from photogenic.stages.registry import STAGES, get_stage
from photogenic.stages.spec import StageOutput
from photogenic.versioning.dvc import require_project
from photogenic.versioning.log import read_versions
from photogenic.versioning.restore import ensure_dataset

log = logging.getLogger(__name__)

CONFIG = "config.yaml"


def run_stage_as_rayjob(stage: str, config: RunConfig, inputs: dict[str, DatasetRef], image: str,
                        api: Any = None, options: RayJobOptions | None = None) -> StageOutput:
    """Run ``stage`` on ``inputs`` (input key -> the ref the runner holds, on this disk and
    versioned) as a RayJob of ``image``; wait for it, pull its output here and return it.
    ``api``: the Kubernetes custom-objects API (default: in-cluster, else the kubeconfig's)."""
    spec = get_stage(stage)
    if stage not in RAY_STAGES:
        raise ConfigError(f"Stage {stage} does not run on the data plane, so it cannot go out as a RayJob; the "
                          f"stages that can: {', '.join(RAY_STAGES)}.")
    if not (config.dvc.enabled and config.dvc.push):
        raise ConfigError(f"Stage {stage} as a RayJob reads its input from the DVC remote and pushes its output "
                          "there: set dvc.enabled and dvc.push to true.")
    project = require_project(".")
    remote = remote_url(project) or ""
    job = StageJob.new(stage, remote, "the project's default DVC remote (`dvc remote add --default NAME URL`; "
                       "the RayJob's pods pull from it)")
    upstream = [_upstream(config, ref, project) for ref in inputs.values()]
    config_url = posixpath.join(job.folder, CONFIG)
    write_text(config_url, dump_config(_portable(config, project)))
    arguments = ["--stage", stage, "--config-file", config_url, "--dvc-remote", remote, "--details-to", job.folder]
    for report in upstream:
        arguments += ["--upstream", report]
    log.info("%s: RayJob %s of %s (report: %s)", stage, job.name, image, job.report)
    report = json.loads(job.run(config, arguments, image, api, options))
    made = report.get("datasets") or {}
    if len(made) != 1:
        raise DataError(f"RayJob {job.name} reported {sorted(made) or 'no datasets'}; stage {stage} makes one.")
    reported = DatasetRef.model_validate(next(iter(made.values())))
    reported = reported.model_copy(update={"path": ref_path(reported, project)})
    state = ensure_dataset(reported, project=project, stage=stage if spec.dvc_stage else None,
                           dvc_file=not spec.dvc_stage)
    log.info("%s: %s (DVC md5 %s) from RayJob %s: %s", stage, reported.name, reported.dvc_md5, job.name, state)
    # the ref a run here would return (its paths on this disk), of the very content the job made
    ref = Dataset(reported.path, reported.name).ref().with_dvc_md5(reported.dvc_md5)
    details = json.loads(read_text(posixpath.join(job.folder, DETAILS)))
    return StageOutput(ref=ref, stats={**details["stats"], "ray_job": job.name},
                       reports={name: posixpath.join(job.folder, file) for name, file in details["reports"].items()})


def _portable(config: RunConfig, project: Path) -> RunConfig:
    """The config as the job's driver reads it: data.root relative to the project (the image
    holds the project at another path)."""
    root = config.data.root
    if is_url(root):
        return config
    relative = os.path.relpath(Path(root).resolve(), project.resolve())
    if relative.startswith(".."):
        raise ConfigError(f"data.root ({root}) lies outside the DVC project ({project}): a stage run as a RayJob "
                          "versions its datasets in the project, so data.root must lie inside it.")
    return config.model_copy(update={"data": config.data.model_copy(update={"root": relative})})


def _upstream(config: RunConfig, ref: DatasetRef, project: Path) -> str:
    """``ref`` as the report of the stage that made it, with the datasets its rows point into
    (the task pulls each by its md5)."""
    if not ref.dvc_md5:
        raise DataError(f"Dataset {ref.name!r} has no DVC version, so a RayJob cannot pull it: version it first "
                        "(dvc.enabled).")
    carried = {}
    for name in sorted(pointed_into(Dataset(ref.path))):
        carried[name] = _versioned(config, name)
    return task_report(_producer(config, ref.name), {ref.name: ref}, carried, {}, project)


def _versioned(config: RunConfig, name: str) -> tuple[str, DatasetRef]:
    """(the stage that made it, its ref with its DVC md5): dataset ``name`` as it lies on this disk."""
    local = Dataset(dataset_dir(config.data.root, name), name).ref()
    for entry in reversed(read_versions(config.data.root)):
        if entry.get("dataset") == name and entry.get("content_hash") == local.content_hash and entry.get("dvc_md5"):
            return entry.get("stage") or _producer(config, name), local.with_dvc_md5(entry["dvc_md5"])
    raise DataError(f"Dataset {name!r} (content {local.content_hash[:12]}), whose images the input's rows point "
                    "into, has no DVC version on record here, so a RayJob cannot pull it.")


def _producer(config: RunConfig, dataset: str) -> str:
    for name, spec in STAGES.items():
        if dataset in spec.dataset_names(config, spec.outputs):
            return name
    return dataset  # a dataset no stage writes (an existing one the config names)
