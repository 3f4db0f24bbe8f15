"""Step settings derived from a stage's declared resources."""

from __future__ import annotations

from zenml.config import ResourceSettings

from photogenic.config import RunConfig
from photogenic.stages.registry import StageSpec


def step_settings(spec: StageSpec, config: RunConfig | None = None) -> dict:
    """The stage's resources as ZenML settings: the embedded default's, or, given the run's
    config, what it needs with that config (``step.with_options(settings=...)``)."""
    resources = spec.resources if config is None else spec.resources_for(config)
    return {
        "resources": ResourceSettings(
            cpu_count=resources.cpus, memory=f"{resources.memory_gb}GB", gpu_count=resources.gpus or None
        )
    }
