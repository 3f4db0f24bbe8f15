"""Step settings derived from a stage's declared resources."""

from __future__ import annotations

from zenml.config import ResourceSettings

from photogenic.stages.registry import StageSpec


def step_settings(spec: StageSpec) -> dict:
    resources = spec.resources
    return {
        "resources": ResourceSettings(
            cpu_count=resources.cpus, memory=f"{resources.memory_gb}GB", gpu_count=resources.gpus or None
        )
    }
