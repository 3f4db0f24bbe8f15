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
from photogenic.dataset.store import Dataset
from photogenic.errors import DataError
from photogenic.paths import dataset_dir
from photogenic.stages.registry import STAGES, get_stage
from photogenic.stages.runner import stage_config  # noqa: F401 - the pipelines' import point
from photogenic.versioning.fingerprint import external_md5s


def stage_external_md5s(stage: str, config: dict[str, Any]) -> dict[str, str]:
    """md5s of the stage's external inputs; one that cannot be read keys as unavailable, and the
    stage itself then reports why (the step runs, since no successful run has that key)."""
    try:
        return external_md5s(get_stage(stage), config_from_dict(config))
    except DataError as exc:
        return {"unavailable": str(exc)}


def external_md5s_by_stage(config: dict[str, Any]) -> dict[str, dict[str, str]]:
    """stage -> ``stage_external_md5s`` for every stage that declares external inputs, taken once
    when a pipeline is composed: the steps' cache keys and the models' lineage tags read the same
    md5s (hashing the source shards is the costly part of composing a pipeline)."""

    return {name: stage_external_md5s(name, config) for name, spec in STAGES.items()
            if spec.external_inputs is not None}


def dataset_content_hash(config: dict[str, Any], name: str) -> str:
    """The content hash of dataset ``name`` as it is on disk now ("missing" when there is none):
    the cache key of a pipeline that starts from an existing dataset instead of making it."""

    dataset = Dataset(dataset_dir(config_from_dict(config).data.root, name), name=name)
    return dataset.ref().content_hash if dataset.exists() else "missing"
