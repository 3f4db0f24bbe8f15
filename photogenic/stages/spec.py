"""What a stage is: its contract, declared once beside its code (``SPEC`` in each
``photogenic/stages/<stage>.py``), and what running it returns.

Plain types only: the registry (photogenic.stages.registry) collects the specs, and every
runner (ZenML steps, ``photogenic step`` for dvc.yaml, the KFP tasks) reads them from there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from photogenic.config import RunConfig, value_at
from photogenic.dataset.ref import DatasetRef


@dataclass(frozen=True)
class Resources:
    cpus: float = 1.0
    memory_gb: float = 2.0
    #: per node
    gpus: int = 0
    #: above 1, the stage runs on that many pods (a KFP training task launches a Kubeflow Trainer
    #: job of them and asks for no more than it needs to wait for it)
    nodes: int = 1


@dataclass
class StageOutput:
    #: the dataset the stage wrote (None for stages whose product is a model)
    ref: DatasetRef | None
    stats: dict[str, Any] = field(default_factory=dict)
    #: HTML reports the stage wrote (name -> path), for people and for the orchestrator's UI
    reports: dict[str, str] = field(default_factory=dict)
    #: the model folder a training stage wrote (a diffusers pipeline)
    model: str | None = None


#: how a runner calls a stage: ``run(config, progress, inputs=..., **options)``. ``inputs`` maps the
#: stage's input keys (``StageSpec.inputs``) to the DatasetRefs the runner hands over (a ZenML
#: step's input artifacts, a KFP task's pulled datasets); a key left out is opened by the
#: dataset name the config gives it (``photogenic step`` under dvc.yaml).
StageRun = Callable[..., StageOutput]


@dataclass(frozen=True)
class StageSpec:
    name: str
    description: str
    run: StageRun
    #: config sections the stage reads (DVC params, the step's parameters)
    params: tuple[str, ...]
    #: the Great Expectations suite kind that gates the stage's output
    gate: str | None
    #: parameters of that suite, taken from the config
    gate_params: Callable[[RunConfig], dict[str, Any]] | None = None
    resources: Resources = Resources()
    #: config keys (dotted) whose values name the datasets the stage reads, e.g. "filter.input"
    inputs: tuple[str, ...] = ()
    #: config keys (dotted) whose values name the datasets the stage writes, e.g. "filter.output"
    outputs: tuple[str, ...] = ()
    #: files the stage reads from outside the datasets (sources, annotation exports): a function of
    #: the config returning name -> path, URL or glob (relative paths under data.root). Their md5s
    #: (photogenic.versioning.fingerprint) go into the ZenML cache key, the model lineage tags and
    #: `photogenic retrain`'s "did anything change" check.
    external_inputs: Callable[[RunConfig], dict[str, str]] | None = None
    #: resources that depend on the config (e.g. a GPU only when a model backend is configured);
    #: ``resources`` is what the stage needs with the embedded default
    config_resources: Callable[[RunConfig], Resources] | None = None
    #: dvc.yaml outputs the stage writes besides its datasets (dvc.yaml path templates), e.g. the
    #: curation folder of tasks and exports
    extra_outs: tuple[str, ...] = ()
    #: False: the stage has no dvc.yaml stage, on purpose (evaluate and promote: registry URIs and
    #: aliases); the drift check then requires its absence instead of its presence
    dvc_stage: bool = True
    #: config keys naming the models the stage reads (model names under <data.root>/models, diffusers
    #: folders or models:/ URIs) / writes (model names). A stage whose models the config leaves unset
    #: is left out of the KFP pipeline (photogenic.stages.graph.stage_graph)
    model_inputs: tuple[str, ...] = ()
    model_outputs: tuple[str, ...] = ()
    #: a runner hands the stage its models as registry URIs (models:/name/version: the evaluation
    #: reads their lineage tags and the promotion gate aliases that version), not as folders
    models_by_uri: bool = False
    #: the stage can continue a killed run from its last checkpoint (``photogenic step NAME --resume``)
    resumable: bool = False
    #: how often a cluster runner retries a failed run (a lost node, a flaky object store), with
    #: exponential backoff from a minute; and how long one run may take before it is stopped
    retries: int = 2
    timeout_hours: float = 24.0
    #: the stage logs to the MLflow tracking server or acts on its registry (runners check that
    #: the server answers before the stage starts)
    tracked: bool = False

    def resources_for(self, config: RunConfig) -> Resources:
        """What the stage needs to run with ``config``."""
        return self.config_resources(config) if self.config_resources else self.resources

    def dataset_names(self, config: RunConfig, keys: tuple[str, ...]) -> list[str]:
        """The dataset names that ``keys`` (``self.inputs`` or ``self.outputs``) hold in ``config``."""
        return [value_at(config, key) for key in keys]
