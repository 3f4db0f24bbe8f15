"""What the ZenML step cache keys on, beyond the step's code and parameters.

ZenML keys a step on its code, its parameters (the resolved config) and its input artifacts'
content hashes. A DatasetRef's hash covers its DVC md5 and manifest sha256, so a stage reading a
changed dataset re-runs. Files a stage reads from outside the datasets (sources, annotation
exports) are not artifacts: their md5s are taken when the pipeline is composed and passed as
a step parameter, so a changed shard re-runs ingest while an unchanged one is cached.
"""

from __future__ import annotations

from typing import Any

from photogenic.config import config_from_dict
from photogenic.errors import DataError
from photogenic.stages.registry import get_stage
from photogenic.versioning.fingerprint import external_md5s

#: sections every stage step gets besides its declared ones (where data lives, how it is versioned)
COMMON_SECTIONS = ("data", "dvc")


def stage_config(stage: str, config: dict[str, Any]) -> dict[str, Any]:
    """The part of the resolved config a stage's steps take: the sections the stage declares
    (as dvc.yaml's params do) plus the common ones. A step's parameters are its cache key, so a
    change to another stage's settings does not re-run it; sections left out take their
    defaults, which is why a stage must declare every section it reads."""
    sections = dict.fromkeys((*COMMON_SECTIONS, *get_stage(stage).params))
    return {name: config[name] for name in sections if name in config}


def stage_external_md5s(stage: str, config: dict[str, Any]) -> dict[str, str]:
    """md5s of the stage's external inputs; one that cannot be read keys as unavailable, and the
    stage itself then reports why (the step runs, since no successful run has that key)."""
    try:
        return external_md5s(get_stage(stage), config_from_dict(config))
    except DataError as exc:
        return {"unavailable": str(exc)}
