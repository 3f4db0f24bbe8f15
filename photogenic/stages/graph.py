"""The stage graph: which stage reads what another writes, derived from the declarations.

One derivation for every runner: the KFP pipeline wires its tasks by it, and the drift checks
compare the other runners' wiring against it. The stages are an argument (usually
photogenic.stages.registry.STAGES), so this module sits below the registry.
"""

from __future__ import annotations

from photogenic.config import RunConfig, value_at
from photogenic.errors import ConfigError
from photogenic.stages.spec import StageSpec

#: how many upstream tasks a stage's task can take (the local KFP component's signature is fixed)
MAX_UPSTREAM = 4


def stage_graph(config: RunConfig, stages: dict[str, StageSpec],
                only: tuple[str, ...] | None = None) -> list[tuple[str, list[str]]]:
    """(stage, upstream stages) in an order where every stage follows the ones it reads from.
    Stages reading models the config leaves unset are left out (``without_models``), unless
    ``only`` names them, which is an error."""
    chosen = {name: spec for name, spec in stages.items() if only is None or name in only}
    for name in without_models(config, chosen):
        if only is not None:
            spec = chosen[name]
            raise ConfigError(f"Stage {name} reads models that the config does not name: set "
                              + ", ".join(k for k in spec.model_inputs if value_at(config, k) is None) + ".")
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
                if any(value_at(config, key) is None for key in spec.model_inputs)}
    while True:
        missing = {d for name in left_out for d in stages[name].dataset_names(config, stages[name].outputs)}
        more = {name for name, spec in stages.items() if name not in left_out
                and set(spec.dataset_names(config, spec.inputs)) & missing}
        if not more:
            return sorted(left_out)
        left_out |= more
