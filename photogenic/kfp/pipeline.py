"""The KFP v2 pipeline, derived from the stage registry.

One task per declared stage, wired by the datasets the stages read and write (their config
keys, resolved with the config given at compile time), with the run parameters of
photogenic.kfp.parameters. Two packagings of the same task (photogenic.kfp.task):

- ``cluster``: a container component per stage running the project image
  (``python -m photogenic.kfp.task``), with CPU/memory requests from the declared resources,
  GPU requests (``set_accelerator_type``/``set_accelerator_limit``), node selectors and
  tolerations (kfp-kubernetes) exactly on the stages that declare GPUs. This is what is uploaded.
- ``local``: the same DAG with each stage as a lightweight Python component calling the task
  function in the current environment, because ``kfp.local``'s SubprocessRunner runs only
  lightweight components (container components need its DockerRunner and a Docker engine).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from photogenic.config import RunConfig
from photogenic.errors import ConfigError
from photogenic.kfp.parameters import PIPELINE_PARAMETERS
from photogenic.stages.registry import STAGES, Resources, StageSpec

PIPELINE_NAME = "photogenic"
#: how many upstream tasks a stage's task can take (the local component's signature is fixed)
MAX_UPSTREAM = 4
_KFP_TYPES = {str: "String", int: "Integer", list: "JsonArray", float: "Float", bool: "Boolean"}


@dataclass
class KfpOptions:
    image: str = "photogenic:latest"
    #: node labels a GPU stage's pod must land on (the NVIDIA GPU operator labels GPU nodes so)
    gpu_node_selector: dict[str, str] = field(default_factory=lambda: {"nvidia.com/gpu.present": "true"})
    #: taints a GPU stage tolerates (GPU node pools are commonly tainted nvidia.com/gpu:NoSchedule)
    gpu_tolerations: list[dict[str, str]] = field(
        default_factory=lambda: [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    )
    accelerator_type: str = "nvidia.com/gpu"
    stages: tuple[str, ...] | None = None  # default: every declared stage


def stage_graph(config: RunConfig, stages: dict[str, StageSpec] = STAGES,
                only: tuple[str, ...] | None = None) -> list[tuple[str, list[str]]]:
    """(stage, upstream stages) in an order where every stage follows the ones it reads from."""
    chosen = {name: spec for name, spec in stages.items() if only is None or name in only}
    for name in without_models(config, chosen):
        if only is not None:
            spec = chosen[name]
            raise ConfigError(f"Stage {name} reads models that the config does not name: set "
                              + ", ".join(k for k in spec.model_inputs if _config_value(config, k) is None) + ".")
        del chosen[name]
    producer: dict[str, str] = {}
    model_producer: dict[str, str] = {}
    for name, spec in chosen.items():
        for dataset in spec.dataset_names(config, spec.outputs):
            if dataset in producer:
                raise ConfigError(f"Stages {producer[dataset]} and {name} both write dataset {dataset!r}.")
            producer[dataset] = name
        for model in spec.dataset_names(config, spec.model_outputs):
            if model in model_producer:
                raise ConfigError(f"Stages {model_producer[model]} and {name} both write model {model!r}.")
            model_producer[model] = name
    # a stage follows the stages writing the datasets it reads and the models it names
    upstream = {name: sorted({producer[d] for d in spec.dataset_names(config, spec.inputs) if d in producer}
                             | {model_producer[m] for m in spec.dataset_names(config, spec.model_inputs)
                                if m in model_producer and model_producer[m] != name})
                for name, spec in chosen.items()}
    ordered: list[tuple[str, list[str]]] = []
    done: set[str] = set()
    while len(done) < len(chosen):
        ready = [n for n in chosen if n not in done and set(upstream[n]) <= done]
        if not ready:
            raise ConfigError(f"The stages {sorted(set(chosen) - done)} read each other's datasets in a cycle.")
        for name in ready:
            if len(upstream[name]) > MAX_UPSTREAM:
                raise ConfigError(f"Stage {name} reads from {len(upstream[name])} stages; at most {MAX_UPSTREAM}.")
            ordered.append((name, upstream[name]))
            done.add(name)
    return ordered


def without_models(config: RunConfig, stages: dict[str, StageSpec]) -> list[str]:
    """Stages that cannot run with ``config``: they read models (``model_inputs``) it leaves
    unset, and the stages reading their datasets (promote after evaluate)."""
    left_out = {name for name, spec in stages.items()
                if any(_config_value(config, key) is None for key in spec.model_inputs)}
    while True:
        missing = {d for name in left_out for d in stages[name].dataset_names(config, stages[name].outputs)}
        more = {name for name, spec in stages.items() if name not in left_out
                and set(spec.dataset_names(config, spec.inputs)) & missing}
        if not more:
            return sorted(left_out)
        left_out |= more


def _config_value(config: RunConfig, key: str) -> Any:
    node: Any = config
    for part in key.split("."):
        node = getattr(node, part)
    return node


def container_component(spec: StageSpec, n_upstream: int, image: str):
    """A KFP container component running ``spec``'s task in the project image."""
    from kfp import components

    inputs = [{"name": p.name, "type": _KFP_TYPES[p.type], "default": _default_text(p.default),
               "description": p.help} for p in PIPELINE_PARAMETERS]
    inputs += [{"name": f"upstream_{i}", "type": "String"} for i in range(n_upstream)]
    inputs += [{"name": "run_id", "type": "String"}, {"name": "run_name", "type": "String"}]
    args: list[Any] = ["--stage", spec.name]
    for p in PIPELINE_PARAMETERS:
        args += [f"--{p.name.replace('_', '-')}", {"inputValue": p.name}]
    for i in range(n_upstream):
        args += ["--upstream", {"inputValue": f"upstream_{i}"}]
    args += ["--run-id", {"inputValue": "run_id"}, "--run-name", {"inputValue": "run_name"},
             "--output", {"outputPath": "result"}]
    text = {
        "name": spec.name,
        "description": spec.description,
        "inputs": inputs,
        "outputs": [{"name": "result", "type": "String", "description": "the stage's datasets (JSON)"}],
        "implementation": {"container": {"image": image, "command": ["python", "-m", "photogenic.kfp.task"],
                                         "args": args}},
    }
    return components.load_component_from_text(json.dumps(text))


def _default_text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, list) else str(value)


def local_component(spec: StageSpec):
    """The lightweight twin of the container component, named after the stage."""
    from photogenic.kfp.local_component import photogenic_stage

    component = copy.deepcopy(photogenic_stage)
    component.component_spec.name = spec.name
    component.name = spec.name
    return component


def build_pipeline(config: RunConfig, options: KfpOptions | None = None, mode: str = "cluster"):
    """The ``@dsl.pipeline`` function for ``config``'s dataset wiring."""
    from kfp import dsl

    options = options or KfpOptions()
    graph = stage_graph(config, only=options.stages)

    names = [p.name for p in PIPELINE_PARAMETERS]

    def body(*args: Any, **kwargs: Any) -> None:
        # KFP calls the function with its parameters (placeholders) in signature order
        params = {**dict(zip(names, args)), **kwargs}
        tasks: dict[str, Any] = {}
        for name, upstream in graph:
            spec = STAGES[name]
            run = {"run_id": dsl.PIPELINE_JOB_ID_PLACEHOLDER, "run_name": dsl.PIPELINE_JOB_NAME_PLACEHOLDER}
            if mode == "cluster":
                component = container_component(spec, len(upstream), options.image)
                links = {f"upstream_{i}": tasks[u].outputs["result"] for i, u in enumerate(upstream)}
            else:
                component = local_component(spec)
                links = {f"upstream_{i}": tasks[u].output for i, u in enumerate(upstream)}
                links.update({f"upstream_{i}": "" for i in range(len(upstream), MAX_UPSTREAM)})
                run["stage"] = name
            task = component(**params, **links, **run)
            task.set_display_name(name)
            task.set_caching_options(False)  # the data lives in DVC, not in KFP's artifact cache
            if mode == "cluster":
                _request_resources(task, spec.resources_for(config), options)
            tasks[name] = task

    # the pipeline function's signature is what KFP turns into typed run parameters
    import inspect

    body.__signature__ = inspect.Signature([
        inspect.Parameter(p.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=p.default, annotation=p.type)
        for p in PIPELINE_PARAMETERS
    ])
    body.__annotations__ = {p.name: p.type for p in PIPELINE_PARAMETERS}
    body.__name__ = PIPELINE_NAME
    return dsl.pipeline(name=PIPELINE_NAME, description="The Emu quality-tuning recipe, stage by stage: "
                        + " → ".join(name for name, _ in graph))(body)


def _request_resources(task: Any, resources: Resources, options: KfpOptions) -> None:
    """``resources``: what the stage needs with the compiled config (``StageSpec.resources_for``)."""
    task.set_cpu_request(str(resources.cpus)).set_cpu_limit(str(resources.cpus))
    task.set_memory_request(f"{resources.memory_gb}G").set_memory_limit(f"{resources.memory_gb}G")
    if resources.gpus:
        from kfp import kubernetes

        task.set_accelerator_type(options.accelerator_type).set_accelerator_limit(resources.gpus)
        for key, value in options.gpu_node_selector.items():
            kubernetes.add_node_selector(task, label_key=key, label_value=value)
        for toleration in options.gpu_tolerations:
            kubernetes.add_toleration(task, **toleration)


def compile_pipeline(config: RunConfig, package_path: str, options: KfpOptions | None = None) -> str:
    from kfp import compiler

    compiler.Compiler().compile(build_pipeline(config, options, mode="cluster"), package_path=package_path)
    return package_path


def run_locally(config: RunConfig, values: dict[str, Any], pipeline_root: str,
                options: KfpOptions | None = None) -> dict[str, dict[str, Any]]:
    """Run the pipeline on this machine with ``kfp.local``'s SubprocessRunner, in the current
    directory (the project) and environment; return each stage's task output."""
    from kfp import local

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=pipeline_root,
               raise_on_error=True)
    run = build_pipeline(config, options, mode="local")(**values)
    outputs: dict[str, dict[str, Any]] = {}
    for task_output in _task_outputs(pipeline_root):
        report = json.loads(task_output)
        outputs[report["stage"]] = report
    del run
    return outputs


def _task_outputs(pipeline_root: str) -> list[str]:
    """The stage tasks' JSON outputs, as kfp.local leaves them under the pipeline root."""
    from pathlib import Path

    found = []
    for path in sorted(Path(pipeline_root).rglob("executor_output.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        value = data.get("parameterValues", {}).get("Output")
        if isinstance(value, str) and value.startswith("{"):
            found.append(value)
    return found
