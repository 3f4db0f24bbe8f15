"""Curation stage: the two human stages, from the candidate pool to the curated set.

For each stage in turn: export the tasks (stage 1: every candidate; stage 2: what stage 1
selected), take the stage's annotation exports from ``<data.root>/<curation.dir>/stage<N>/
annotations/`` (when there are none and ``curation.simulate.enabled``, SIMULATED annotators write
them first), and import them. The curated dataset is the stage-2 selection: the candidates'
rows, unchanged, plus these columns (images stay in the input's shards):

    stage{1,2}_votes, _keep_votes, _keep_share, _verdict, _rank, _agreement (verdict kappa),
    _annotators, and the aggregated answers: stage1_<criterion> (share of annotators who ticked
    it), stage2_<criterion> (mean 1-5 rating), stage2_mean_rating, stage2_<subjective question>
    (share of yes); human_caption, human_caption_annotator, human_caption_at.

Bad annotation rows quarantined by ``skip_bad`` are in the dataset's quarantine table too.
Without annotations for a stage the run stops with a message that says what to annotate.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from photogenic.config import RunConfig
from photogenic.curation.export import export_stage
from photogenic.curation.importer import StageResult, annotation_files, import_stage
from photogenic.curation.incoming import fetch_exports, landed_exports
from photogenic.curation.simulate import is_simulated, simulate_stage
from photogenic.dataset.ref import DatasetRef
from photogenic.dataset.schema import QUARANTINE_SCHEMA
from photogenic.dataset.store import Dataset, repoint_shards
from photogenic.dataset.upstream import upstream_entries
from photogenic.paths import dataset_dir
from photogenic.stages.inputs import open_input
from photogenic.stages.spec import Resources, StageOutput, StageSpec

log = logging.getLogger(__name__)

#: stage-result columns that are bookkeeping of one stage, not labels of the sample
_NOT_COPIED = {"sample_id", "selected", "auto_filter_score"}


@dataclass
class CurationResult:
    ref: DatasetRef
    stages: dict[int, StageResult] = field(default_factory=dict)
    simulated: bool = False

    def stats(self) -> dict[str, Any]:
        return {f"stage{n}": {**r.counts, "verdict_kappa": r.verdict_kappa} for n, r in self.stages.items()} | {
            "simulated_annotators": self.simulated}


def curate(config: RunConfig, progress: bool = True, input_ref: DatasetRef | None = None) -> CurationResult:
    """``input_ref``: the candidate pool as a runner hands it (else the one curation.input names).
    The export, import and simulation helpers (also the `photogenic curation` commands) read the
    candidates where the config names them; the ref is checked to be that dataset."""
    source = open_input(config.data.root, "curation", config.curation.input, config.curation.output,
                        "the auto-filter", ref=input_ref)
    fetch_exports(config)
    results: dict[int, StageResult] = {}
    simulated = False
    # once people have labelled a stage, no later stage is simulated on their selection
    may_simulate = config.curation.simulate.enabled
    for stage in (1, 2):
        export_stage(config, stage, progress=progress)
        files = stage_files(config, stage)
        if not files and may_simulate:
            files = simulate_stage(config, stage)
            simulated = True
        may_simulate = may_simulate and simulated
        results[stage] = import_stage(config, stage, files=files)
        _check_agreement(config, results[stage])
    ref = write_curated(config, results, source, input_ref)
    log.info("curation %s → %s: %d candidates → stage 1 selected %d → stage 2 selected %d%s",
             config.curation.input, config.curation.output, source.num_rows(),
             results[1].counts["selected"], ref.rows, " (SIMULATED annotators)" if simulated else "")
    return CurationResult(ref, results, simulated)


def stage_files(config: RunConfig, stage: int) -> list[str]:
    """The exports a stage imports: the people's, when there are any (simulated ones left from
    an earlier demo run are then ignored, never mixed in), else the simulated ones."""
    files = annotation_files(config, stage)
    human = [f for f in files if not is_simulated(f)]
    if human and len(human) < len(files):
        log.info("stage %d: %d exports from people; %d simulated exports ignored", stage, len(human),
                 len(files) - len(human))
    if human or not config.curation.simulate.enabled:
        return human
    return []  # regenerate the simulated ones: the tasks may have changed since they were written


def write_curated(config: RunConfig, results: dict[int, StageResult], source: Dataset,
                  source_ref: DatasetRef | None = None) -> DatasetRef:
    target = Dataset(dataset_dir(config.data.root, config.curation.output), name=config.curation.output)
    selected = results[2].table.filter(pc.equal(results[2].table["selected"], True))
    manifest = source.read_manifest()
    manifest = manifest.filter(pc.is_in(manifest["sample_id"], value_set=selected["sample_id"]))
    for stage in (1, 2):
        manifest = _join(manifest, results[stage].table)
    # curation makes no pixels: the rows keep pointing at the candidates' shards
    manifest = repoint_shards(manifest, source, target)
    quarantine = pa.Table.from_pylist([
        {"source_kind": "annotation", "source": f"{bad.file}#row{bad.row}", "sample_id": bad.sample_id,
         "length": None, "stage": f"curation_stage{n}", "reason_code": bad.reason_code, "reason": bad.describe()}
        for n, result in results.items() for bad in result.quarantine], schema=QUARANTINE_SCHEMA)
    card = {
        "name": target.name, "stage": "curation", "input": source.name, "rows": manifest.num_rows,
        "upstream": upstream_entries(source, source_ref),
        "quarantined_annotation_rows": quarantine.num_rows,
        "stages": {f"stage{n}": {"counts": r.counts, "agreement": {k: v.as_dict() for k, v in r.agreement.items()}}
                   for n, r in results.items()},
        "params": config.curation.model_dump(mode="json"),
    }
    return target.write(manifest, quarantine, card)


def _join(manifest: pa.Table, result: pa.Table) -> pa.Table:
    """Add a stage result's label columns to the manifest rows, matched by sample id."""
    columns = [c for c in result.column_names if c not in _NOT_COPIED]
    index = {sid: i for i, sid in enumerate(result["sample_id"].to_pylist())}
    take = pa.array([index[sid] for sid in manifest["sample_id"].to_pylist()], pa.int64())
    for column in columns:
        manifest = manifest.append_column(result.schema.field(column), result[column].take(take))
    return manifest



def _check_agreement(config: RunConfig, result: StageResult) -> None:
    """A verdict kappa under the floor warns here; with on_low_agreement=fail the quality gate
    (which checks the same floor) stops the run."""
    floor, kappa = config.curation.gate.min_agreement, result.verdict_kappa
    if kappa is None:
        log.warning("stage %d: no task was seen by two annotators, so agreement cannot be measured "
                    "(curation.stage%d.overlap)", result.stage, result.stage)
    elif kappa < floor:
        log.warning("stage %d: verdict agreement kappa %.3f is below curation.gate.min_agreement %.3f (%s)",
                    result.stage, kappa, floor, config.curation.gate.on_low_agreement)


def _run(config: RunConfig, progress: bool, inputs: dict[str, DatasetRef] | None = None) -> StageOutput:
    result = curate(config, progress=progress, input_ref=(inputs or {}).get("curation.input"))
    return StageOutput(ref=result.ref, stats=result.stats())


def gate_params(config: RunConfig) -> dict[str, Any]:
    """The curation gate's parameters; the caption gate re-checks them (photogenic.stages.caption)."""
    settings = config.curation
    return {
        "stage1_quota": settings.stage1.quota,
        "stage2_quota": settings.stage2.quota,
        "min_agreement": settings.gate.min_agreement if settings.gate.on_low_agreement == "fail" else None,
    }


def _exports(config: RunConfig) -> dict[str, str]:
    """The annotators' exports under <data.root>/<curation.dir>/stage<N>/annotations/. SIMULATED
    exports are left out: the stage writes them itself from the sample pool's ground truth, which
    is declared instead, for the stages that have no people's exports (the ones it simulates)."""
    inputs: dict[str, str] = {}
    for stage in (1, 2):
        people = [path for path in annotation_files(config, stage) if not is_simulated(path)]
        for path in people:
            name = path.rsplit("/", 1)[-1]
            inputs[f"stage{stage}/{name}"] = f"{config.curation.dir}/stage{stage}/annotations/{name}"
        # the exports that landed elsewhere (a bucket on a cluster) are read from there
        for path in landed_exports(config, stage):
            inputs[f"stage{stage}/{path.rsplit('/', 1)[-1]}"] = path
            people.append(path)
        if not people and config.curation.simulate.enabled:
            inputs["simulate.ground_truth"] = config.curation.simulate.ground_truth
    return inputs


SPEC = StageSpec(
    name="curation",
    description="Two human curation stages over the candidate pool: export Label Studio tasks, import "
    "the annotators' exports (SIMULATED annotators for the sample pool), vote, apply the quotas, and "
    "write the curated set with every label and the human captions.",
    run=_run,
    params=("data", "curation"),
    gate="curation",
    external_inputs=_exports,
    extra_outs=("${data.root}/${curation.dir}",),
    gate_params=gate_params,
    resources=Resources(cpus=1, memory_gb=2),
    inputs=("curation.input",),
    outputs=("curation.output",),
)
