"""The promote stage: the promotion gate over an evaluation's results (photogenic.evaluation.promotion)."""

from __future__ import annotations

from photogenic.config import RunConfig
from photogenic.dataset.ref import DatasetRef
from photogenic.dataset.store import Dataset
from photogenic.errors import ConfigError
from photogenic.evaluation.promotion import promote
from photogenic.evaluation.results import read_results
from photogenic.paths import dataset_dir
from photogenic.stages.spec import Resources, StageOutput, StageSpec


def _run(config: RunConfig, progress: bool, inputs: dict[str, DatasetRef] | None = None) -> StageOutput:
    """``inputs``: evaluate's dataset as a runner hands it (else the one evaluate.output names)."""
    given = (inputs or {}).get("evaluate.output")
    if given is not None and given.name != config.evaluate.output:
        raise ConfigError(f"promote was handed {given.name!r} but evaluate.output is {config.evaluate.output!r}.")
    folder = given.path if given is not None else dataset_dir(config.data.root, config.evaluate.output)
    ref = Dataset(folder, config.evaluate.output).ref()
    if not config.evaluate.promotion.enabled:
        return StageOutput(ref=ref, stats={"promotion": {"promoted": False, "reason": "evaluate.promotion.enabled "
                                                         "is false"}})
    decision = promote(read_results(folder), config.evaluate.promotion)
    return StageOutput(ref=ref, stats={"promotion": decision.as_dict()})


SPEC = StageSpec(
    name="promote",
    description="Give the candidate the registry alias (champion) only if the evaluation shows it beats "
    "the current champion or the baseline by the configured margin; record the decision on the version.",
    run=_run,
    params=("data", "evaluate"),
    gate=None,
    resources=Resources(cpus=1, memory_gb=1),
    inputs=("evaluate.output",),
    # it acts on the model registry after evaluate, which has no dvc.yaml stage
    dvc_stage=False,
    tracked=True,
)
