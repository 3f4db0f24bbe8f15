"""The evaluate stage's declaration: sample the candidate and the baseline model with the same
seeds, judge every image, write win rates and the report (photogenic.evaluation.evaluate)."""

from __future__ import annotations

from photogenic.config import RunConfig
from photogenic.dataset.ref import DatasetRef
from photogenic.evaluation.evaluate import run_evaluation
from photogenic.stages.spec import Resources, StageOutput, StageSpec


def _run(config: RunConfig, progress: bool, inputs: dict[str, DatasetRef] | None = None) -> StageOutput:
    result = run_evaluation(config, progress=progress)
    return StageOutput(ref=result.ref, stats={"headline": result.results["headline"], "fid": result.results["fid"],
                                              "mlflow_run_id": result.results.get("mlflow_run_id")},
                       reports={"evaluation_report": result.report})


def resources(config: RunConfig) -> Resources:
    """A cluster runner requests evaluate.gpus GPUs."""
    return Resources(cpus=2, memory_gb=8, gpus=config.evaluate.gpus)


SPEC = StageSpec(
    name="evaluate",
    description="Sample the candidate and the baseline model on the prompt set with the same seeds, "
    "judge every image, and write pairwise win rates with intervals, FID/KID and the report.",
    run=_run,
    # ingest: the evaluation dataset's shards are sized as ingest's (shard_max_images/bytes)
    params=("data", "evaluate", "ingest"),
    gate=None,
    resources=Resources(cpus=2, memory_gb=8),
    config_resources=resources,
    outputs=("evaluate.output",),
    external_inputs=lambda config: {"prompts": config.evaluate.prompts},
    model_inputs=("evaluate.candidate", "evaluate.baseline"),
    models_by_uri=True,
    # the models may be registry URIs (models:/name@alias), which dvc.yaml cannot track
    dvc_stage=False,
    tracked=True,
)
