"""The MLflow model version tags that carry lineage, named in one place.

The training steps tag every model version they register with ``model_version_tags(...)``; ``photogenic lineage`` and ``photogenic retrain`` read them back.

    photogenic.dvc_md5.<dataset>        DVC md5 of each dataset version the model was made from
    photogenic.rows.<dataset>           its row count
    photogenic.input_md5.<stage>.<name> md5 of each file a stage read from outside the datasets
                                        (ingest's sources, curation's annotation exports)
    photogenic.run.runner / .id / .name the pipeline run that made the model (zenml, kfp, dvc)
    photogenic.git_commit               the code's commit
    photogenic.config_md5               md5 of the resolved run config (JSON, sorted keys)
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from photogenic.config import RunConfig
from photogenic.dataset.ref import DatasetRef
from photogenic.dataset.store import Dataset
from photogenic.stages.spec import StageSpec
from photogenic.versioning.fingerprint import external_md5s
from photogenic.versioning.log import git_commit as checked_out

PREFIX = "photogenic."
DVC_MD5 = PREFIX + "dvc_md5."
ROWS = PREFIX + "rows."
INPUT_MD5 = PREFIX + "input_md5."
RUN = PREFIX + "run."
GIT_COMMIT = PREFIX + "git_commit"
CONFIG_MD5 = PREFIX + "config_md5"

#: the registered model and alias `photogenic retrain` compares against by default
DEFAULT_MODEL = "photogenic-t2i"
CHAMPION_ALIAS = "champion"


def config_md5(config: RunConfig) -> str:
    return hashlib.md5(json.dumps(config.resolved(), sort_keys=True).encode()).hexdigest()  # noqa: S324


def input_md5s(config: RunConfig, stages: dict[str, StageSpec], only: list[str] | None = None) -> dict[str, str]:
    """``<stage>.<name>`` -> md5 of every external input of ``stages`` (or those ``only`` names).
    By default the stages a model is made from: not those reading models (evaluate's prompt file
    judges a model, a new one is no reason to retrain)."""
    chosen = _lineage_stages(stages, only)
    return keyed_input_md5s({name: external_md5s(stages[name], config) for name in chosen}, stages, only)


def keyed_input_md5s(by_stage: dict[str, dict[str, str]], stages: dict[str, StageSpec],
                     only: list[str] | None = None) -> dict[str, str]:
    """``input_md5s`` from md5s already taken per stage (stage -> name -> md5)."""
    return {f"{name}.{key}": md5 for name in _lineage_stages(stages, only) for key, md5 in by_stage.get(name, {}).items()}


def _lineage_stages(stages: dict[str, StageSpec], only: list[str] | None) -> list[str]:
    return [name for name, spec in stages.items()
            if (only is None and not spec.model_inputs) or (only is not None and name in only)]


def model_version_tags(config: RunConfig, datasets: list[DatasetRef], run: dict[str, Any],
                       inputs: dict[str, str], git_commit: str | None = None) -> dict[str, str]:
    """The lineage tags of a model version made by ``run`` from ``datasets`` with ``config``.
    ``inputs``: the external inputs' md5s (``input_md5s``), taken by the runner, whose training
    step sees only its own config sections."""
    tags = {GIT_COMMIT: git_commit or checked_out() or "", CONFIG_MD5: config_md5(config)}
    for ref in datasets:
        if not ref.dvc_md5:
            raise ValueError(f"dataset {ref.name} is not versioned (no DVC md5): its lineage would be lost")
        tags[DVC_MD5 + ref.name] = ref.dvc_md5
        tags[ROWS + ref.name] = str(ref.rows)
    tags.update({INPUT_MD5 + key: md5 for key, md5 in inputs.items()})
    tags.update({RUN + key: str(run.get(key, "")) for key in ("runner", "id", "name")})
    return tags


def lineage_datasets(dataset: DatasetRef) -> list[DatasetRef]:
    """``dataset`` and the versions of the datasets it was made from, as its dataset card recorded
    them when it was written (the packaged training set's card lists its upstream chain)."""
    found = [dataset]
    card = Dataset(dataset.path).read_card()
    for entry in card.get("upstream") or []:
        if entry.get("dvc_md5"):
            found.append(DatasetRef(name=entry["dataset"], path="", manifest="", content_hash=entry.get("content_hash")
                                    or "", rows=entry.get("rows") or 0, dvc_md5=entry["dvc_md5"]))
    return found


def read_tags(tags: dict[str, str]) -> dict[str, Any]:
    """Lineage tags of a model version, grouped."""
    return {
        "datasets": {k[len(DVC_MD5):]: v for k, v in tags.items() if k.startswith(DVC_MD5)},
        "rows": {k[len(ROWS):]: int(v) for k, v in tags.items() if k.startswith(ROWS)},
        "inputs": {k[len(INPUT_MD5):]: v for k, v in tags.items() if k.startswith(INPUT_MD5)},
        "run": {k[len(RUN):]: v for k, v in tags.items() if k.startswith(RUN)},
        "git_commit": tags.get(GIT_COMMIT),
        "config_md5": tags.get(CONFIG_MD5),
    }
