"""Checks that a runner's wiring matches the stage declarations (photogenic.stages.registry).

Each function returns the problems it finds, one sentence each (empty: in step). The tests run
them on the project's dvc.yaml, ZenML pipelines and KFP pipeline, so a stage added to the
registry but not to a runner, an output a runner writes but the stage does not declare, or a
parameter section no config knows, fails the suite.

dvc.yaml is checked, not generated: its stages also list the code each stage depends on (which
the registry does not declare), and hand-kept entries stay readable in review.
"""

from __future__ import annotations

from typing import Any

from photogenic.config import RunConfig, field_annotation
from photogenic.stages.registry import STAGES
from photogenic.stages.spec import StageSpec

#: dvc.yaml stages that are not photogenic stages (they make raw inputs, not datasets)
DVC_ONLY_STAGES = {"sample_pool"}


def dataset_path_template(key: str) -> str:
    """How dvc.yaml names the dataset folder a config key holds."""
    return "${data.root}/datasets/${" + key + "}"


def check_registry(stages: dict[str, StageSpec] = STAGES) -> list[str]:
    problems = []
    for name, spec in stages.items():
        for section in spec.params:
            if not _is_config_key(section):
                problems.append(f"stage {name}: parameter section {section!r} is not a RunConfig section")
        for key in (*spec.inputs, *spec.outputs):
            if not _is_config_key(key):
                problems.append(f"stage {name}: dataset key {key!r} is not a key of the config")
            elif not _declares(spec, key):
                problems.append(f"stage {name}: dataset key {key!r} lies in a section the stage does not declare")
        for key in spec.model_inputs:
            if not _is_config_key(key):
                problems.append(f"stage {name}: model key {key!r} is not a key of the config")
            elif not _declares(spec, key):
                problems.append(f"stage {name}: model key {key!r} lies in a section the stage does not declare")
        if not spec.dvc_stage and not spec.model_inputs and not _reads_from_stage_without_dvc(spec, stages):
            problems.append(f"stage {name}: declared without a dvc.yaml stage, yet it reads neither models "
                            "(model_inputs) nor a dataset of a stage without one")
    return problems


def _declares(spec: StageSpec, key: str) -> bool:
    """``key`` lies in a section (or dotted subsection) the stage declares."""
    return any(key == p or key.startswith(p + ".") for p in spec.params)


def _reads_from_stage_without_dvc(spec: StageSpec, stages: dict[str, StageSpec]) -> bool:
    """Whether ``spec`` reads a dataset key that a stage without a dvc.yaml stage writes."""
    return any(key in other.outputs for other in stages.values() if not other.dvc_stage for key in spec.inputs)


def check_dvc_yaml(dvc: dict[str, Any], stages: dict[str, StageSpec] = STAGES) -> list[str]:
    problems = []
    declared = dvc.get("stages", {})
    for name in declared:
        if name not in stages and name not in DVC_ONLY_STAGES:
            problems.append(f"dvc.yaml: stage {name} is not declared in the registry")
    for name, spec in stages.items():
        entry = declared.get(name)
        if not spec.dvc_stage:
            if entry is not None:
                problems.append(f"dvc.yaml: stage {name} is declared without a dvc.yaml stage (dvc_stage=False) "
                                "but dvc.yaml has one")
            continue
        if entry is None:
            problems.append(f"dvc.yaml: stage {name} is missing")
            continue
        cmd = " ".join(entry.get("cmd", [])) if isinstance(entry.get("cmd"), list) else entry.get("cmd", "")
        if f"photogenic step {name} " not in f"{cmd} ":
            problems.append(f"dvc.yaml: stage {name} does not run `photogenic step {name}` (cmd: {cmd})")
        params = [p if isinstance(p, str) else next(iter(p)) for p in entry.get("params", [])]
        for section in params:
            if not _is_config_key(section):
                problems.append(f"dvc.yaml: stage {name}: parameter section {section!r} is unknown to the config")
        if set(params) != set(spec.params):
            problems.append(f"dvc.yaml: stage {name}: params {sorted(params)} differ from the declared {sorted(spec.params)}")
        outs = [o if isinstance(o, str) else next(iter(o)) for o in entry.get("outs", [])]
        wanted_outs = {dataset_path_template(key) for key in spec.outputs} | set(spec.extra_outs)
        # a model is a folder under <data.root>/models plus its summary file beside it
        for key in spec.model_outputs:
            wanted_outs |= {f"${{data.root}}/models/${{{key}}}", f"${{data.root}}/models/${{{key}}}.json"}
        for out in outs:
            if out not in wanted_outs:
                problems.append(f"dvc.yaml: stage {name}: output {out} is not declared by the stage")
        for out in sorted(wanted_outs - set(outs)):
            problems.append(f"dvc.yaml: stage {name}: declared output {out} is missing from outs")
        deps = set(entry.get("deps", []))
        for key in spec.inputs:
            if dataset_path_template(key) not in deps:
                problems.append(f"dvc.yaml: stage {name}: declared input {dataset_path_template(key)} is missing from deps")
    return problems


def check_zenml_invocations(invocations: dict[str, dict[str, Any]], stages: dict[str, StageSpec] = STAGES,
                            required: set[str] | None = None) -> list[str]:
    """``invocations``: invocation id -> {"step": step name, "parameters": {...}, "inputs": [names],
    "spec": the stage its module declares, "gpu_count": ...} (see tests/test_runner_drift.py for how a prepared ZenML pipeline gives it).
    Every stage in ``required`` (default: all) must appear, with its gate and version steps."""
    from photogenic.stages.runner import stage_config_keys  # the steps' own rule for which sections they take

    problems = []
    required = set(stages) if required is None else required
    by_step: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for invocation_id, info in invocations.items():
        by_step.setdefault(info["step"], []).append((invocation_id, info))
    for name in sorted(required):
        if name not in by_step:
            problems.append(f"ZenML: stage {name} has no step in the pipeline")
    for name, spec in stages.items():
        for invocation_id, info in by_step.get(name, []):
            # every declared dataset comes in as an artifact; a declared model may (from a training
            # step) or may be named in the config (the evaluation pipeline's models:/ URIs)
            if not len(spec.inputs) <= len(info["inputs"]) <= len(spec.inputs) + len(spec.model_inputs):
                problems.append(f"ZenML: step {invocation_id} takes {len(info['inputs'])} artifacts, the stage declares "
                                f"{len(spec.inputs)} datasets ({', '.join(spec.inputs) or 'none'}) and "
                                f"{len(spec.model_inputs)} models")
            sections = set(info["parameters"].get("config", {}))
            wanted = {key.split(".")[0] for key in stage_config_keys(name)}
            if sections != wanted:
                problems.append(f"ZenML: step {invocation_id} gets config sections {sorted(sections)}, "
                                f"the stage declares {sorted(wanted)}")
            if spec.inputs and not info.get("restores_inputs", True):
                problems.append(f"ZenML: step {invocation_id} does not restore its input datasets "
                                "(photogenic.versioning.restore.ensure_dataset) before running: a cached upstream "
                                "step leaves none on disk")
            if spec.external_inputs is not None and "external_md5s" not in info["parameters"]:
                problems.append(f"ZenML: step {invocation_id} does not key its cache on its external inputs' md5s")
            if info.get("gpu_count") != (spec.resources.gpus or None):
                problems.append(f"ZenML: step {invocation_id} requests {info.get('gpu_count')} GPUs, the stage "
                                f"declares {spec.resources.gpus}")
        if name in by_step:
            # a stage with a gate is gated; a dataset with a dvc.yaml stage is versioned by it (a
            # model's versions are the MLflow registry's, with its content hash on the artifact)
            kinds = [kind for kind, wanted in (("quality_gate", spec.gate is not None),
                                              ("version_dataset", spec.dvc_stage and bool(spec.outputs))) if wanted]
            for kind in kinds:
                if not any(i["parameters"].get("stage") == name for i in invocations.values() if i["step"] == kind):
                    problems.append(f"ZenML: stage {name} has no {kind} step")
    for invocation_id, info in invocations.items():
        declared = info.get("spec")  # the SPEC a stage step's module declares it runs
        if declared is not None and declared != info["step"]:
            problems.append(f"ZenML: step {invocation_id} ({info['step']}) runs stage {declared}: name them alike")
        if declared is not None and declared not in stages:
            problems.append(f"ZenML: step {invocation_id} runs {declared}, which the registry does not declare")
    return problems


def _is_config_key(key: str) -> bool:
    try:
        field_annotation(key)
    except KeyError:
        return False
    return True


def ir_tasks(ir: dict[str, Any], dag: dict[str, Any] | None = None) -> dict[str, tuple[dict, dict]]:
    """Every task that runs a container, in the root DAG and the sub-DAGs of its conditions:
    task name -> (task, component)."""
    found = {}
    for name, task in (dag or ir["root"]["dag"])["tasks"].items():
        component = ir["components"][task["componentRef"]["name"]]
        if "dag" in component:
            found.update(ir_tasks(ir, component["dag"]))
        else:
            found[name] = (task, component)
    return found


def check_kfp_ir(ir: dict[str, Any], config: RunConfig, stages: dict[str, StageSpec] = STAGES) -> list[str]:
    """A compiled KFP pipeline (IR YAML, first document) against the declarations: one task per
    stage running it, upstream tasks = the stages writing its input datasets, GPUs as declared."""
    from photogenic.stages.graph import stage_graph

    problems = []
    by_stage = {}
    for task_name, (task, component) in ir_tasks(ir).items():
        container = ir["deploymentSpec"]["executors"][component["executorLabel"]]["container"]
        args = container.get("args", [])
        if "--check" in args:
            continue  # the first task checks the inputs; it runs no stage
        stage = args[args.index("--stage") + 1] if "--stage" in args else None
        if stage not in stages:
            problems.append(f"KFP: task {task_name} runs {stage!r}, which the registry does not declare")
            continue
        by_stage[stage] = (task_name, task, container)
    names = {stage: task_name for stage, (task_name, _, _) in by_stage.items()}
    for stage, upstream in stage_graph(config, stages):
        if stage not in by_stage:
            problems.append(f"KFP: stage {stage} has no task")
            continue
        task_name, task, container = by_stage[stage]
        if any(u not in by_stage for u in upstream):
            continue  # reported as missing; its dependants' wiring cannot be compared
        wanted = sorted(names.get(u, u) for u in upstream)
        if sorted(task.get("dependentTasks", [])) != wanted:
            problems.append(f"KFP: task {task_name} follows {task.get('dependentTasks', [])}, the declared datasets "
                            f"make it follow {wanted}")
        accelerator = container.get("resources", {}).get("accelerator")
        gpus = int(accelerator.get("resourceCount", accelerator.get("count", 0))) if accelerator else 0
        declared = stages[stage].resources_for(config).gpus
        if gpus != declared:
            problems.append(f"KFP: task {task_name} requests {gpus} GPUs, the stage declares {declared}")
    return problems
