"""Running a stage and its quality gate: the core that every runner calls."""

from __future__ import annotations

import logging
from typing import Any

from photogenic.config import RunConfig
from photogenic.dataset.lock import data_root_lock
from photogenic.dataset.ref import DatasetRef
from photogenic.dataset.store import Dataset
from photogenic.errors import ConfigError
from photogenic.stages.registry import STAGES, get_stage
from photogenic.stages.spec import StageOutput, StageSpec

log = logging.getLogger(__name__)


#: sections every stage's steps get besides its declared ones (where data lives, how it is versioned)
COMMON_SECTIONS = ("data", "dvc")


def stage_config(stage: str, config: dict[str, Any]) -> dict[str, Any]:
    """The part of the resolved config a stage's steps take: the sections (or dotted subsections)
    the stage declares (as dvc.yaml's params do) plus the common ones. A ZenML step's parameters are its cache key,
    so a change to another stage's settings does not re-run it; sections left out take their
    defaults, which is why a stage must declare every section it reads."""
    taken: dict[str, Any] = {}
    for key in stage_config_keys(stage):
        # a dotted key takes one subsection (``training.pretrain``): the training stages key on
        # their own recipe, so tuning the quality-tuning recipe does not re-run pretraining
        top, _, sub = key.partition(".")
        if top not in config:
            continue
        if not sub:
            taken[top] = config[top]
        elif taken.get(top) is not config[top] and sub in config[top]:  # not when the whole section is in
            taken.setdefault(top, {})[sub] = config[top][sub]
    return taken


def stage_config_keys(stage: str) -> tuple[str, ...]:
    """The config sections (and dotted subsections) ``stage_config`` takes for ``stage``."""
    return tuple(dict.fromkeys((*COMMON_SECTIONS, *get_stage(stage).params)))


def run_stage(name: str, config: RunConfig, progress: bool = True, **options) -> StageOutput:
    """Run stage ``name``, holding the data folder's lock; ``options`` go to stages that take
    them: ``inputs`` (input key -> the DatasetRef a runner hands over), ``resume=True`` for
    resumable ones."""
    spec = get_stage(name)
    check_own_outputs(spec, config)
    with data_root_lock(config.data.root, f"stage {name}"):
        return spec.run(config, progress, **options)


def check_own_outputs(spec: StageSpec, config: RunConfig) -> None:
    """Refuse a stage whose output dataset is another stage's: replacing it would drop the
    shards that every dataset derived from that one points into (``package.output=ingested``)."""
    for key in spec.outputs:
        name = spec.dataset_names(config, (key,))[0]
        for other in STAGES.values():
            clash = [k for k in other.outputs if k != key and other.dataset_names(config, (k,))[0] == name]
            if clash:
                raise ConfigError(f"{key} is {name!r}, the dataset {clash[0]} names: every stage writes a dataset of "
                                  f"its own (writing {name!r} would replace the {other.name} stage's dataset, and "
                                  "with it the images the datasets made from it point into). Choose another name.")


def quality_dir(ref: DatasetRef) -> str:
    """Where a dataset's gate writes its Data Docs: beside the dataset folder, not inside it,
    because the docs carry run times and would change the dataset's DVC md5 on every run."""
    return f"{ref.path}.quality"


def check_output(name: str, ref: DatasetRef, config: RunConfig, raise_on_failure: bool = True) -> Any:
    """Validate a stage's output with its Great Expectations suite; raise QualityGateError on
    failure (unless told not to). Returns the GateResult, or None for a stage without a gate."""
    spec = get_stage(name)
    if spec.gate is None:
        return None
    from photogenic.quality import run_gate

    table = Dataset(ref.path).read_manifest()
    # raw caption bytes are kept for audit, not checked; pandas would carry them as objects
    manifest = table.drop_columns([c for c in ("caption_raw",) if c in table.column_names]).to_pandas()
    params: dict[str, Any] = spec.gate_params(config) if spec.gate_params else {}
    result = run_gate(spec.gate, manifest, quarantine_rows=ref.quarantined, params=params, docs_dir=quality_dir(ref))
    log.info("quality gate %s on %s: %s", spec.gate, ref.name, "passed" if result.success else "FAILED")
    if raise_on_failure:
        result.raise_for_failure()
    return result
