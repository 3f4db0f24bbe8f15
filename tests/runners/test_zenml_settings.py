"""The ZenML side of the cluster: step settings from the declared resources (checked against
what ZenML 0.98's Kubeflow orchestrator does with them) and the stack recipe's component options."""

import re
import shlex
from dataclasses import replace
from pathlib import Path

import yaml

from photogenic.stages.registry import STAGES
from photogenic.stages.spec import Resources
from steps.settings import ACCELERATOR_SELECTOR, GPU_RESOURCE, KUBEFLOW_SETTINGS_KEY, step_settings

REPO = Path(__file__).resolve().parents[2]


class RecordingTask:
    """Stands in for a kfp PipelineTask, recording the resource calls made on it after checking
    their values with kfp's own validators (what a real task would refuse)."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        from kfp.dsl.pipeline_task import PipelineTask

        validators = {"set_cpu_limit": PipelineTask._validate_cpu_request_limit,
                      "set_memory_limit": PipelineTask._validate_memory_request_limit}

        def record(*args):
            if name in validators:
                validators[name](None, *args)
            self.calls.append((name, *args))
            return self
        return record


def _kubeflow_requests(settings):
    """What ZenML's Kubeflow orchestrator requests for a step with ``settings``: its own code path."""
    from zenml.integrations.kubeflow.orchestrators.kubeflow_orchestrator import (
        KFP_ACCELERATOR_NODE_SELECTOR_CONSTRAINT_LABEL,
        KubeflowOrchestrator,
    )

    kubeflow = settings.get(KUBEFLOW_SETTINGS_KEY)
    constraint = None
    if kubeflow is not None and KFP_ACCELERATOR_NODE_SELECTOR_CONSTRAINT_LABEL in kubeflow.pod_settings.node_selectors:
        label = KFP_ACCELERATOR_NODE_SELECTOR_CONSTRAINT_LABEL
        constraint = (label, kubeflow.pod_settings.node_selectors[label])
    task = RecordingTask()
    KubeflowOrchestrator._configure_container_resources(None, task, settings["resources"], constraint)
    return task.calls


def test_gpu_stage_settings_make_kubeflow_request_the_gpu():
    spec = replace(STAGES["ingest"], resources=Resources(cpus=8, memory_gb=32, gpus=2))
    settings = step_settings(spec)
    assert settings["resources"].gpu_count == 2
    assert settings[KUBEFLOW_SETTINGS_KEY].pod_settings.node_selectors == {ACCELERATOR_SELECTOR: GPU_RESOURCE}
    calls = _kubeflow_requests(settings)
    assert ("set_accelerator_type", "nvidia.com/gpu") in calls and ("set_accelerator_limit", 2) in calls
    assert ("set_cpu_limit", "8.0") in calls and not [c for c in calls if c[0] == "set_memory_limit"]


def test_zenml_memory_settings_would_break_kubeflow_compilation():
    """Why step settings carry no memory: ZenML 0.98 passes it to KFP as a float, which KFP refuses."""
    import pytest
    from zenml.config import ResourceSettings

    settings = {"resources": ResourceSettings(cpu_count=1, memory="4GB")}
    with pytest.raises(TypeError):
        _kubeflow_requests(settings)


def test_cpu_stage_settings_request_no_gpu():
    for spec in STAGES.values():
        if spec.resources.gpus:
            continue
        settings = step_settings(spec)
        assert settings["resources"].gpu_count is None and KUBEFLOW_SETTINGS_KEY not in settings
        assert not [c for c in _kubeflow_requests(settings) if "accelerator" in c[0]]


def _register_commands():
    text = (REPO / "infra/zenml/kubeflow-stack.sh").read_text().replace("\\\n", " ")
    return [shlex.split(line.strip()) for line in text.splitlines()
            if re.match(r"\s*zenml [a-z-]+ register", line)]


def test_stack_recipe_options_exist_in_zenml_flavors():
    from zenml.container_registries.base_container_registry import BaseContainerRegistryConfig
    from zenml.image_builders.local_image_builder import LocalImageBuilderConfig
    from zenml.integrations.kubeflow.flavors.kubeflow_orchestrator_flavor import KubeflowOrchestratorConfig
    from zenml.integrations.mlflow.flavors.mlflow_experiment_tracker_flavor import MLFlowExperimentTrackerConfig
    from zenml.integrations.s3.flavors.s3_artifact_store_flavor import S3ArtifactStoreConfig

    configs = {("orchestrator", "kubeflow"): KubeflowOrchestratorConfig, ("artifact-store", "s3"): S3ArtifactStoreConfig,
               ("experiment-tracker", "mlflow"): MLFlowExperimentTrackerConfig,
               ("container-registry", "default"): BaseContainerRegistryConfig,
               ("image-builder", "local"): LocalImageBuilderConfig}
    seen = set()
    for command in _register_commands():
        if command[1] == "stack":
            continue
        options = dict(arg[2:].split("=", 1) for arg in command[4:] if arg.startswith("--"))
        kind = (command[1], options.pop("flavor"))
        seen.add(kind)
        fields = set(configs[kind].model_fields)
        assert set(options) <= fields, (kind, set(options) - fields)
    assert seen == set(configs)
    stack = next(c for c in _register_commands() if c[1] == "stack")
    assert {"-o", "-a", "-c", "-e", "-i"} <= set(stack)


def test_run_configuration_is_valid_for_zenml():
    from zenml.config import DockerSettings
    from zenml.config.pipeline_run_configuration import PipelineRunConfiguration
    from zenml.integrations.kubeflow.flavors.kubeflow_orchestrator_flavor import KubeflowOrchestratorSettings

    raw = yaml.safe_load((REPO / "infra/zenml/kubeflow-run.yaml").read_text())
    config = PipelineRunConfiguration.model_validate(raw)
    docker = DockerSettings.model_validate(raw["settings"]["docker"])
    assert docker.parent_image and docker.install_stack_requirements is False
    KubeflowOrchestratorSettings.model_validate(raw["settings"]["orchestrator.kubeflow"])
    assert set(config.settings) == {"docker", "orchestrator.kubeflow"}
