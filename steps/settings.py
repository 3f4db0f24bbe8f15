"""Step settings derived from a stage's declared resources.

What ZenML 0.98's Kubeflow orchestrator honours (read from its source, not its docs):
- CPU and memory limits and ``gpu_count`` come from ``ResourceSettings``;
- a GPU is requested (``set_accelerator_type`` + ``set_accelerator_limit``) only when
  ``gpu_count > 0`` *and* the step's orchestrator settings carry the node selector key
  ``accelerator``, whose value becomes the accelerator type (the Kubernetes resource name);
- the settings must give that selector as the top-level ``node_selectors`` field: the settings
  model rebuilds ``pod_settings`` from it on validation, so a ``pod_settings=...`` passed directly
  is silently replaced; every other pod setting (tolerations, volumes, labels) is dropped with a
  warning under KFP 2.x. Tolerations therefore live in the native KFP pipeline (photogenic/kfp).

- memory is *not* set: the orchestrator hands ``ResourceSettings.get_memory()`` (a float, in GB)
  to KFP's ``set_memory_limit``, which accepts only strings ("32G") and fails the compilation
  with a TypeError. The declared memory is requested by the native KFP pipeline instead.

The ``orchestrator.kubeflow`` key applies these only when the active stack's orchestrator is
Kubeflow; the local orchestrator ignores them.
"""

from __future__ import annotations

from typing import Any

from zenml.config import ResourceSettings

from photogenic.config import RunConfig, TrackingConfig
from photogenic.stages.spec import StageSpec

#: the ZenML experiment tracker the MLflow-using steps name (pipelines.tracking.ensure_mlflow_stack
#: registers it on the local stack; a cluster stack brings its own of that name)
EXPERIMENT_TRACKER = TrackingConfig().zenml_tracker
#: the node selector key ZenML's Kubeflow orchestrator reads the accelerator type from
ACCELERATOR_SELECTOR = "accelerator"
#: the Kubernetes extended resource a GPU step requests
GPU_RESOURCE = "nvidia.com/gpu"
KUBEFLOW_SETTINGS_KEY = "orchestrator.kubeflow"


def step_settings(spec: StageSpec, config: RunConfig | None = None) -> dict[str, Any]:
    """The stage's resources as ZenML settings: the embedded default's, or, given the run's
    config, what it needs with that config (``step.with_options(settings=...)``)."""
    resources = spec.resources if config is None else spec.resources_for(config)
    settings: dict[str, Any] = {
        # no memory: see the module docstring
        "resources": ResourceSettings(cpu_count=resources.cpus, gpu_count=resources.gpus or None)
    }
    if resources.gpus:
        from zenml.integrations.kubeflow.flavors.kubeflow_orchestrator_flavor import KubeflowOrchestratorSettings

        settings[KUBEFLOW_SETTINGS_KEY] = KubeflowOrchestratorSettings(
            node_selectors={ACCELERATOR_SELECTOR: GPU_RESOURCE}
        )
    return settings


def tracked_settings(spec: StageSpec, config: RunConfig | None, experiment: str) -> dict[str, Any]:
    """``step_settings`` plus an MLflow run of the step's own in ``experiment``, nested in the
    pipeline run's (ZenML's tracker otherwise logs every step of a pipeline run into one MLflow
    run, where the stages' params clash). Steps that use MLflow (training, evaluation, the
    registry gate) run under the stack's experiment tracker, so they all reach the same
    tracking store and model registry."""
    from zenml.integrations.mlflow.flavors.mlflow_experiment_tracker_flavor import MLFlowExperimentTrackerSettings

    return {**step_settings(spec, config),
            "experiment_tracker": MLFlowExperimentTrackerSettings(nested=True, experiment_name=experiment)}
