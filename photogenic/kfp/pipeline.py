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
from photogenic.kfp.parameters import PIPELINE_PARAMETERS
from photogenic.stages.graph import MAX_UPSTREAM, stage_graph
from photogenic.stages.registry import STAGES
from photogenic.stages.spec import Resources, StageSpec

PIPELINE_NAME = "photogenic"
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
    graph = stage_graph(config, STAGES, only=options.stages)

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
