"""Every stage, collected: each declares its contract (``SPEC``, photogenic.stages.spec) beside
its code in ``photogenic/stages/<stage>.py``; the runners (ZenML steps, ``photogenic step`` for
dvc.yaml, the KFP tasks) look the stages up here.

A new stage: write ``photogenic/stages/<stage>.py`` with its function and its ``SPEC``, add the
spec below in pipeline order, and wire it into the runners; the drift tests
(tests/runners/test_drift.py) say where a runner is missing it.
"""

from __future__ import annotations

from photogenic.errors import ConfigError
from photogenic.stages import auto_filter, caption, curation, evaluate, ingest, package, promote, training, upsample
from photogenic.stages.spec import StageSpec

STAGES: dict[str, StageSpec] = {
    spec.name: spec
    for spec in (ingest.SPEC, auto_filter.SPEC, curation.SPEC, caption.SPEC, upsample.SPEC, package.SPEC,
                 training.PRETRAIN, training.QUALITY_TUNE, evaluate.SPEC, promote.SPEC)
}


def get_stage(name: str) -> StageSpec:
    try:
        return STAGES[name]
    except KeyError:
        raise ConfigError(f"Unknown stage {name!r}; the stages are: {', '.join(STAGES)}.") from None
