"""Multi-node training on Kubeflow Trainer: the TrainJob a training task submits when the
stage's ``training.resources.nodes`` is above 1.

Kubeflow Trainer v2 (``trainer.kubeflow.org/v1alpha1`` ``TrainJob``, Trainer >= 2.2), not the v1
Training Operator's ``PyTorchJob``: v1 is in maintenance, v2 is where Kubeflow's training work
goes; a TrainJob names a runtime the cluster's administrators install once (the
``torch-distributed`` ClusterTrainingRuntime that ships with Trainer) and states only what is the
job's own: image, command, environment, ``numNodes``, ``numProcPerNode`` and
``resourcesPerNode``, which map one to one onto ``training.resources``.

The rendezvous. Trainer's torch plugin gives the trainer container of node ``i`` of a job named
``J``:

    PET_NNODES=<numNodes>  PET_NPROC_PER_NODE=<numProcPerNode>  PET_NODE_RANK=<i>
    PET_MASTER_ADDR=J-node-0-0.J  PET_MASTER_PORT=29500

``torchrun`` reads each ``PET_<OPTION>`` as its ``--<option>`` (static rendezvous at the master
address), so each node's command (``node_command``: the stage's KFP task in its node role, which pulls
the inputs and then runs torchrun) passes no rendezvous flags; torchrun then starts ``numProcPerNode`` processes per node with
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR`` and
``MASTER_PORT`` set, which is what accelerate joins its process group from
(photogenic/training/distributed.py) and what the trainer's thread count divides the pod's CPUs
by (photogenic/cpu_quota.py). tests/runners/test_trainjob.py runs that torchrun on two "nodes" of
this machine with the environment the operator would give them; tests/cluster/test_trainjob_on_cluster.py
runs the whole job, from the KFP task that creates it to the model read back from the registry.

Who calls this: the KFP training task (photogenic/kfp/task.py) when ``nodes > 1``. It renders the
job with ``render_trainjob``, creates it through the Kubernetes API, waits for its ``Complete``
or ``Failed`` condition (photogenic/kfp/trainjob_launch.py), and reads the model back from the
registry, where the job's main process registered it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

from photogenic.config import TrainingResources

TRAINJOB_GROUP = "trainer.kubeflow.org"
TRAINJOB_VERSION = "v1alpha1"
TRAINJOB_PLURAL = "trainjobs"
#: the ClusterTrainingRuntime Kubeflow Trainer installs for PyTorch (torchrun, PET_* rendezvous)
TORCH_RUNTIME = "torch-distributed"
#: the runtime's trainer replicated job and container, which runtimePatches address by name
TRAINER_NODE = "node"
#: who owns this job's runtime patch (node selector, tolerations, service account)
PATCH_MANAGER = "photogenic.io/kfp-task"
#: Trainer refuses a job that sets these itself: its torch plugin sets them
OPERATOR_ENV = ("PET_NNODES", "PET_NPROC_PER_NODE", "PET_NODE_RANK", "PET_MASTER_ADDR", "PET_MASTER_PORT")
#: the torch plugin's rendezvous port (Trainer's constants.ContainerTrainerPort)
MASTER_PORT = 29500
_NAME_MAX = 63  # an RFC 1035 label: the CRD's rule on metadata.name


def node_command(stage: str, arguments: Sequence[str] = ()) -> list[str]:
    """What every node runs: the stage's KFP task in its node role, ``python -m
    photogenic.kfp.task --stage <stage> --train-node`` with ``arguments`` (the run's parameters,
    the upstream tasks' reports, the training context): the node pulls the stage's inputs from
    the DVC remote itself (the nodes share no disk with the task that creates the job), then
    runs torchrun with no rendezvous flags, which it takes from the PET_* variables the operator
    sets (photogenic.stages.training.train_node)."""
    return ["python", "-m", "photogenic.kfp.task", "--stage", stage, "--train-node", *arguments]


def job_name(stage: str, run_id: str) -> str:
    """A TrainJob name for ``stage`` in run ``run_id``: an RFC 1035 label the operator can add
    its pod suffixes to (``<name>-node-0-0``), stable for a run, so a retried task finds the job
    its first attempt created instead of starting a second one."""
    base = re.sub(r"[^a-z0-9-]+", "-", f"photogenic-{stage}".lower()).strip("-")
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:10]
    return f"{base[:_NAME_MAX - 30]}-{digest}"


def render_trainjob(
    *,
    name: str,
    namespace: str,
    image: str,
    command: Sequence[str],
    resources: TrainingResources,
    secret_env: Mapping[str, Mapping[str, str]] | None = None,
    config_map_env: Mapping[str, Mapping[str, str]] | None = None,
    env: Mapping[str, str] | None = None,
    node_selector: Mapping[str, str] | None = None,
    tolerations: Sequence[Mapping[str, str]] = (),
    service_account: str | None = None,
    active_deadline_s: int | None = None,
    labels: Mapping[str, str] | None = None,
    runtime: str = TORCH_RUNTIME,
) -> dict[str, Any]:
    """The TrainJob manifest (a dict, ready for ``create_namespaced_custom_object`` or
    ``yaml.safe_dump``) that runs ``command`` on ``resources.nodes`` pods of ``image``.

    - each pod gets ``resources.gpus`` GPUs (``nvidia.com/gpu``, requested and limited),
      ``resources.cpus`` CPUs (requested and limited: the limit is the quota the trainer sizes
      its threads from) and ``resources.memory_gb`` GiB; one process per GPU (one on a CPU node);
    - ``secret_env`` / ``config_map_env``: ``{object name: {key: variable}}``, each key of the
      named Secret or ConfigMap given to the container as that variable (Trainer's API takes
      variables one by one, not envFrom);
    - ``env``: literal variables (never a secret: the manifest is readable by anyone who may
      list TrainJobs);
    - ``node_selector``, ``tolerations``, ``service_account``: patched onto the runtime's pods
      (GPU node pools, bucket access through a workload identity);
    - ``active_deadline_s``: the job fails after this many seconds.
    """
    env = env or {}
    reserved = sorted(set(env) & set(OPERATOR_ENV))
    if reserved:
        raise ValueError(f"{', '.join(reserved)} are set by Kubeflow Trainer's torch runtime on every node "
                         "(the rendezvous); a TrainJob that sets them is refused")
    variables: list[dict[str, Any]] = [{"name": k, "value": str(v)} for k, v in env.items()]
    for kind, objects in (("secretKeyRef", secret_env), ("configMapKeyRef", config_map_env)):
        for object_name, keys in (objects or {}).items():
            variables += [{"name": variable, "valueFrom": {kind: {"name": object_name, "key": key}}}
                          for key, variable in keys.items()]
    names = [v["name"] for v in variables]
    if len(names) != len(set(names)):
        raise ValueError(f"environment variables given twice: {sorted({n for n in names if names.count(n) > 1})}")

    cpu = _quantity(resources.cpus)
    requests = {"cpu": cpu, "memory": f"{resources.memory_gb}Gi"}
    limits = {"cpu": cpu, "memory": f"{resources.memory_gb}Gi"}
    if resources.gpus:
        requests["nvidia.com/gpu"] = limits["nvidia.com/gpu"] = str(resources.gpus)
    spec: dict[str, Any] = {
        "runtimeRef": {"apiGroup": TRAINJOB_GROUP, "kind": "ClusterTrainingRuntime", "name": runtime},
        "trainer": {
            "image": image,
            "command": list(command),
            "env": variables,
            "numNodes": resources.nodes,
            "numProcPerNode": max(1, resources.gpus),
            "resourcesPerNode": {"requests": requests, "limits": limits},
        },
    }
    pod: dict[str, Any] = {}
    if node_selector:
        pod["nodeSelector"] = dict(node_selector)
    if tolerations:
        pod["tolerations"] = [dict(t) for t in tolerations]
    if service_account:
        pod["serviceAccountName"] = service_account
    if pod:
        spec["runtimePatches"] = [{"manager": PATCH_MANAGER, "trainingRuntimeSpec": {"template": {"spec": {
            "replicatedJobs": [{"name": TRAINER_NODE, "template": {"spec": {"template": {"spec": pod}}}}]}}}}]
    if active_deadline_s is not None:
        spec["activeDeadlineSeconds"] = int(active_deadline_s)
    return {
        "apiVersion": f"{TRAINJOB_GROUP}/{TRAINJOB_VERSION}",
        "kind": "TrainJob",
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {"app.kubernetes.io/part-of": "photogenic", **(labels or {})}},
        "spec": spec,
    }


def _quantity(cpus: float) -> str:
    """A CPU count as a Kubernetes quantity: whole CPUs as '4', fractions in millicores ('1500m')."""
    return str(int(cpus)) if float(cpus).is_integer() else f"{round(cpus * 1000)}m"
