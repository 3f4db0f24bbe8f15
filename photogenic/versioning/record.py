"""Versioning a stage's output: DVC commit (+ push) and an entry in the versions log."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from photogenic.config import RunConfig
from photogenic.dataset.ref import DatasetRef
from photogenic.errors import DataError
from photogenic.versioning.dvc import add_folder, commit_stage, require_project
from photogenic.versioning.log import record_version

log = logging.getLogger(__name__)


def version_output(stage: str, ref: DatasetRef, config: RunConfig, run: dict[str, Any],
                   allow_missing_deps: bool = False) -> DatasetRef:
    """Commit ``stage``'s outputs to DVC and return ``ref`` carrying its DVC md5.

    The dataset must be one of the stage's outs in dvc.yaml (whose paths come from params.yaml,
    the resolved config), otherwise dvc.lock could not describe it: that is an error.
    """
    project = require_project(".")
    outputs = commit_stage(project, stage, push=config.dvc.push, allow_missing_deps=allow_missing_deps)
    wanted = Path(ref.path).resolve()
    md5 = next((o.md5 for o in outputs if (project / o.path).resolve() == wanted), None)
    if md5 is None:
        raise DataError(
            f"dvc.yaml's stage {stage!r} does not declare {ref.path} as an output (it declares "
            f"{[o.path for o in outputs]}); make its outs match data.root and the dataset name."
        )
    versioned = ref.with_dvc_md5(md5)
    record_version(config.data.root, versioned, stage, run)
    log.info("versioned %s as DVC md5 %s%s", ref.name, md5, " (pushed)" if config.dvc.push else "")
    return versioned


def version_untracked(stage: str, ref: DatasetRef, config: RunConfig, run: dict[str, Any]) -> DatasetRef:
    """Version the output of a stage that has no dvc.yaml stage on purpose (evaluate: its models
    may be registry URIs, which dvc.yaml cannot track) with a .dvc file of its own, and push it,
    so a task on another machine can pull it by the md5 this returns."""
    project = require_project(".")
    versioned = ref.with_dvc_md5(add_folder(project, Path(ref.path), push=config.dvc.push))
    record_version(config.data.root, versioned, stage, run)
    log.info("versioned %s as DVC md5 %s (its own .dvc file%s)", ref.name, versioned.dvc_md5,
             ", pushed" if config.dvc.push else "")
    return versioned
