"""ZenML's MLflow experiment tracker on the local stack, set up on first use.

The training steps name an experiment tracker; ZenML refuses to run them on a stack without
one. On the local stack (the project's own ZenML home) this registers an ``mlflow`` tracker
(tracking into ``training.tracking.tracking_uri``, else ``$MLFLOW_TRACKING_URI``, whose default
is the project's ``mlflow.db``: the store ``photogenic lineage``/``retrain`` read too) and a stack ``<active stack>-mlflow`` with it, and activates that stack. A stack that
already has an experiment tracker is left as it is (a cluster stack brings its own).
"""

from __future__ import annotations

import logging

from photogenic.config import RunConfig
from photogenic.training.tracking import configured_uri

log = logging.getLogger(__name__)


def ensure_mlflow_stack(config: RunConfig) -> str:
    """Make sure the active stack has the tracker the training steps name; returns the stack name."""
    from zenml.client import Client
    from zenml.enums import StackComponentType

    client = Client()
    tracking = config.training.tracking
    stack = client.active_stack_model
    # the store the commands reading the registry use too (photogenic.runtime sets the default)
    uri = configured_uri(tracking)  # without credentials: ZenML stores the component's configuration
    configuration = {"tracking_uri": uri} if uri else {}
    existing = client.list_stack_components(type=StackComponentType.EXPERIMENT_TRACKER, name=tracking.zenml_tracker)
    ours = existing.items[0] if existing.items else None
    if ours is not None and uri and ours.configuration.get("tracking_uri") != uri:
        ours = client.update_stack_component(ours.id, StackComponentType.EXPERIMENT_TRACKER, configuration=configuration)
    if StackComponentType.EXPERIMENT_TRACKER in stack.components:
        current = stack.components[StackComponentType.EXPERIMENT_TRACKER][0].name
        if current != tracking.zenml_tracker:
            log.warning("the active stack %s tracks with %s; the training steps name %s", stack.name, current,
                        tracking.zenml_tracker)
        return stack.name
    if ours is not None:
        tracker = ours
    else:
        tracker = client.create_stack_component(
            name=tracking.zenml_tracker, flavor="mlflow", component_type=StackComponentType.EXPERIMENT_TRACKER,
            configuration=configuration,
        )
    components = {kind: [c.id for c in found] for kind, found in stack.components.items()}
    components[StackComponentType.EXPERIMENT_TRACKER] = [tracker.id]
    name = f"{stack.name}-mlflow"
    existing_stacks = client.list_stacks(name=name)
    new = existing_stacks.items[0] if existing_stacks.items else client.create_stack(
        name=name, components={k: v[0] for k, v in components.items()})
    client.activate_stack(new.id)
    log.info("ZenML stack %s: %s plus the MLflow experiment tracker %s", name, stack.name, tracking.zenml_tracker)
    return name
