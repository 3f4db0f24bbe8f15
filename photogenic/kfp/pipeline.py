"""The KFP v2 pipeline, derived from the stage registry.

One container task per declared stage, running the project image (``python -m
photogenic.kfp.task``), wired by the datasets the stages read and write (their config keys,
resolved with the config given at compile time), with the run parameters of
photogenic.kfp.parameters. Before them, one ``check-inputs`` task reads the run's config and
inputs once and hands each stage task its fingerprint (its config sections and the md5s of the
files it reads from outside the datasets); with ``only_if_changed`` (scheduled retraining) it
also decides, against the champion model's lineage, whether the stages run at all (``dsl.If``).

What the cluster gives every task:
- its environment from a Kubernetes Secret (object-store credentials) and a ConfigMap (tracking
  server, S3 endpoint, DVC remote; photogenic.kfp.environment), named at compile time;
- KFP's cache, keyed on content: a stage task's inputs are its fingerprint and its upstream
  tasks' outputs, which carry the DVC md5s of the datasets they made, so a rerun with nothing
  changed is served from the cache and a changed shard re-runs what depends on it;
- retries with exponential backoff and a timeout, from the stage's declaration;
- CPU and memory requests from the declared resources, GPU requests
  (``set_accelerator_type``/``set_accelerator_limit``), node selectors and tolerations
  (kfp-kubernetes) exactly on the stages that declare GPUs;
- a training stage on several nodes (``training.resources.nodes`` > 1) instead gets a small pod
  that creates a Kubeflow Trainer job of that many nodes and waits for it: the job's image,
  Secret, ConfigMap, GPU node selector and tolerations in its environment, and its namespace.

``photogenic.kfp.local_run`` runs the compiled package on this machine, each task as its own
process in a directory of its own, as pods share nothing.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, field
from typing import Any

from photogenic.config import RunConfig
from photogenic.kfp import environment
from photogenic.kfp.parameters import PIPELINE_PARAMETERS, STAGE_PARAMETERS, parameter_text
from photogenic.kfp.rayjob import RAY_STAGES
from photogenic.stages.graph import stage_graph
from photogenic.stages.registry import STAGES
from photogenic.stages.spec import Resources, StageSpec

PIPELINE_NAME = "photogenic"
#: the first task: fingerprints and the retraining decision
CHECK = "check-inputs"
TASK_MODULE = "photogenic.kfp.task"
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
    #: the Secret and the ConfigMap every task takes its environment from
    secret_name: str = environment.SECRET_NAME
    config_map_name: str = environment.CONFIG_MAP_NAME
    #: run the data-plane stages (photogenic.kfp.rayjob.RAY_STAGES) as KubeRay RayJobs
    ray: bool = False
    #: a multi-node training task reads its TrainJob's status this often (seconds)
    trainjob_poll_s: float = 30.0


def fingerprint_output(stage: str) -> str:
    """The check task's output that holds ``stage``'s fingerprint."""
    return f"fingerprint_{stage}"


def _inputs(parameters) -> list[dict[str, Any]]:
    return [{"name": p.name, "type": _KFP_TYPES[p.type], "default": parameter_text(p.default),
             "description": p.help} for p in parameters]


def _parameter_args(parameters) -> list[Any]:
    args: list[Any] = []
    for p in parameters:
        args += [f"--{p.name.replace('_', '-')}", {"inputValue": p.name}]
    return args


def check_component(stages: list[str], image: str):
    """The first task: what each stage's cache key holds, and whether the stages run at all."""
    from kfp import components

    outputs = [{"name": "changed", "type": "String", "description": "'true' when the stages are to run"},
               {"name": "reason", "type": "String", "description": "why they run, or why not"}]
    outputs += [{"name": fingerprint_output(s), "type": "String", "description": f"{s}'s config and input md5s"}
                for s in stages]
    args = ["--check", *_parameter_args(PIPELINE_PARAMETERS), "--stages", ",".join(stages),
            "--output-changed", {"outputPath": "changed"}, "--output-reason", {"outputPath": "reason"}]
    for s in stages:
        args += ["--output-fingerprint", s, {"outputPath": fingerprint_output(s)}]
    text = {
        "name": CHECK,
        "description": "Fingerprint every stage's config and inputs; with only_if_changed, skip the run when "
                       "nothing changed since the champion.",
        "inputs": _inputs(PIPELINE_PARAMETERS),
        "outputs": outputs,
        "implementation": {"container": {"image": image, "command": ["python", "-m", TASK_MODULE], "args": args}},
    }
    return components.load_component_from_text(json.dumps(text))


def container_component(spec: StageSpec, n_upstream: int, image: str, ray: bool = False):
    """A KFP container component running ``spec``'s task in the project image (``ray``: as a
    KubeRay RayJob of that image, photogenic.kfp.rayjob)."""
    from kfp import components

    inputs = _inputs(STAGE_PARAMETERS)
    inputs += [{"name": f"upstream_{i}", "type": "String"} for i in range(n_upstream)]
    inputs += [{"name": "fingerprint", "type": "String", "description": "the stage's config and input md5s"}]
    args: list[Any] = ["--stage", spec.name, *_parameter_args(STAGE_PARAMETERS)]
    for i in range(n_upstream):
        args += ["--upstream", {"inputValue": f"upstream_{i}"}]
    args += ["--fingerprint", {"inputValue": "fingerprint"}, "--output", {"outputPath": "result"}]
    if ray:
        args += ["--ray-job", image]
    text = {
        "name": spec.name,
        "description": spec.description,
        "inputs": inputs,
        "outputs": [{"name": "result", "type": "String", "description": "the stage's datasets and models (JSON)"}],
        "implementation": {"container": {"image": image, "command": ["python", "-m", TASK_MODULE], "args": args}},
    }
    return components.load_component_from_text(json.dumps(text))


def build_pipeline(config: RunConfig, options: KfpOptions | None = None):
    """The ``@dsl.pipeline`` function for ``config``'s dataset wiring."""
    from kfp import dsl

    options = options or KfpOptions()
    graph = stage_graph(config, STAGES, only=options.stages)
    names = [p.name for p in PIPELINE_PARAMETERS]
    stage_names = {p.name for p in STAGE_PARAMETERS}

    def body(*args: Any, **kwargs: Any) -> None:
        # KFP calls the function with its parameters (placeholders) in signature order
        params = {**dict(zip(names, args)), **kwargs}
        check = check_component([name for name, _ in graph], options.image)(**params)
        check.set_display_name(CHECK)
        check.set_caching_options(False)  # it looks at the inputs as they are now, every run
        _cluster_environment(check, options)
        check.set_retry(2, backoff_duration="60s", backoff_factor=2.0, backoff_max_duration="3600s")
        # it lists and hashes files' metadata (object stores report md5s): light work
        _request_resources(check, Resources(cpus=1, memory_gb=2), options)
        tasks: dict[str, Any] = {}
        with dsl.If(check.outputs["changed"] == "true", name="inputs-changed"):
            for name, upstream in graph:
                spec = STAGES[name]
                links = {f"upstream_{i}": tasks[u].outputs["result"] for i, u in enumerate(upstream)}
                on_ray = options.ray and name in RAY_STAGES
                task = container_component(spec, len(upstream), options.image, ray=on_ray)(
                    **{k: v for k, v in params.items() if k in stage_names}, **links,
                    fingerprint=check.outputs[fingerprint_output(name)])
                task.set_display_name(name)
                # content-keyed: the fingerprint and the upstream md5s are the task's inputs
                task.set_caching_options(True)
                _cluster_environment(task, options)
                _policies(task, spec)
                resources = spec.resources_for(config)
                if on_ray:
                    # a RayJob's pods ask for the stage's resources; its launcher only waits
                    _request_resources(task, Resources(cpus=0.5, memory_gb=1), options)
                elif resources.nodes > 1:
                    _launches_trainjob(task, options)
                    # it creates the job and waits: the job's nodes get the stage's GPUs, CPUs and memory
                    _request_resources(task, Resources(cpus=1, memory_gb=2), options)
                else:
                    _request_resources(task, resources, options)
                tasks[name] = task

    # the pipeline function's signature is what KFP turns into typed run parameters, and its
    # docstring's Args what the "Create run" form shows beside each
    body.__signature__ = inspect.Signature([
        inspect.Parameter(p.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=p.default, annotation=p.type)
        for p in PIPELINE_PARAMETERS
    ])
    body.__annotations__ = {p.name: p.type for p in PIPELINE_PARAMETERS}
    body.__name__ = PIPELINE_NAME
    body.__doc__ = ("The Emu quality-tuning recipe.\n\nArgs:\n"
                    + "".join(f"    {p.name}: {p.help}\n" for p in PIPELINE_PARAMETERS))
    return dsl.pipeline(name=PIPELINE_NAME, description="The Emu quality-tuning recipe, stage by stage: "
                        + " → ".join(name for name, _ in graph))(body)


def _cluster_environment(task: Any, options: KfpOptions) -> None:
    from kfp import kubernetes

    kubernetes.use_secret_as_env(task, options.secret_name, environment.SECRET_ENV)
    kubernetes.use_config_map_as_env(task, options.config_map_name, environment.CONFIG_MAP_ENV)
    for name, field_path in environment.RUN_FIELDS.items():
        kubernetes.use_field_path_as_env(task, name, field_path)


def _launches_trainjob(task: Any, options: KfpOptions) -> None:
    """A training task on several nodes: what it makes the TrainJob from, and its namespace. It
    runs under the run's service account, which may create TrainJobs there
    (infra/k8s/trainjob-rbac.yaml; KFP sets service accounts per run, not per task)."""
    from kfp import kubernetes

    from photogenic.kfp.trainjob_launch import LaunchSettings

    settings = LaunchSettings(image=options.image, secret_name=options.secret_name,
                              config_map_name=options.config_map_name,
                              gpu_node_selector=dict(options.gpu_node_selector),
                              gpu_tolerations=[dict(t) for t in options.gpu_tolerations], poll_s=options.trainjob_poll_s)
    task.set_env_variable(environment.TRAINJOB_SETTINGS_ENV, settings.to_env())
    for name, field_path in environment.NAMESPACE_FIELD.items():
        kubernetes.use_field_path_as_env(task, name, field_path)


def _policies(task: Any, spec: StageSpec) -> None:
    from kfp import kubernetes

    task.set_retry(spec.retries, backoff_duration="60s", backoff_factor=2.0, backoff_max_duration="3600s")
    kubernetes.set_timeout(task, int(spec.timeout_hours * 3600))


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

    compiler.Compiler().compile(build_pipeline(config, options), package_path=package_path)
    return package_path
