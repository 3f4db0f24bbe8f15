"""A stage as a KubeRay ``RayJob``: the manifest, rendered from the stage's declared resources.

The RayJob brings up a Ray cluster of the project image for one stage run (a head that runs the
stage's driver and no work, a CPU worker group, and a GPU worker group when the stage declares
GPUs), runs the stage's task command as its entrypoint, which connects to that cluster through
``RAY_ADDRESS`` (KubeRay sets it), and deletes the cluster when the job finishes
(``shutdownAfterJobFinishes``). Every container takes the same Secret and ConfigMap as the KFP
tasks (photogenic.kfp.environment). tests/data/kuberay holds the CRD schema the manifests are
validated against.
"""

from __future__ import annotations

import math
import posixpath
import re
import shlex
import uuid
from dataclasses import dataclass, field
from typing import Any

from photogenic.config import RunConfig
from photogenic.dataset.atomic import read_text
from photogenic.errors import ConfigError, PhotogenicError
from photogenic.kfp import environment
from photogenic.kfp.trainjob_launch import current_namespace, custom_objects_api
from photogenic.paths import is_url
from photogenic.stages.registry import get_stage
from photogenic.stages.spec import Resources, StageSpec

API_VERSION = "ray.io/v1"
KIND = "RayJob"
#: the Ray the project image installs (pyproject's ``ray`` extra)
RAY_VERSION = "2.60.0"
#: the stages whose per-row work runs on the data plane (photogenic.dataplane): decoding, the
#: scorers, the captioning model, the upscaler, packing
RAY_STAGES = ("ingest", "auto_filter", "caption", "upsample", "package")


@dataclass
class RayJobOptions:
    image: str = "photogenic:latest"
    namespace: str | None = None
    #: the most worker pods a group may scale to (KubeRay's autoscaler, from one pod)
    max_workers: int = 8
    gpu_resource: str = "nvidia.com/gpu"
    gpu_node_selector: dict[str, str] = field(default_factory=lambda: {"nvidia.com/gpu.present": "true"})
    gpu_tolerations: list[dict[str, str]] = field(
        default_factory=lambda: [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}])
    secret_name: str = environment.SECRET_NAME
    config_map_name: str = environment.CONFIG_MAP_NAME
    #: seconds the finished cluster is kept for a look at its logs before it is deleted
    ttl_seconds_after_finished: int = 300


def job_name(stage: str, suffix: str) -> str:
    """A Kubernetes name (RFC 1123, at most 63 characters) for one run of ``stage``."""
    name = re.sub(r"[^a-z0-9-]+", "-", f"photogenic-{stage}-{suffix}".lower()).strip("-")
    return name[:63].rstrip("-")


def rayjob_manifest(spec: StageSpec, config: RunConfig, entrypoint: list[str], name: str,
                    options: RayJobOptions | None = None) -> dict[str, Any]:
    """The RayJob running ``entrypoint`` (the stage's task command) on a cluster sized from
    ``spec.resources_for(config)``: each worker pod gets the stage's CPUs and memory, the GPU
    group one pod per declared GPU."""
    options = options or RayJobOptions()
    resources = spec.resources_for(config)
    groups = [_group("cpu", resources, options, gpus=0, replicas=1, max_replicas=options.max_workers)]
    if resources.gpus:
        groups.append(_group("gpu", resources, options, gpus=1, replicas=resources.gpus,
                             max_replicas=max(resources.gpus, options.max_workers)))
    metadata: dict[str, Any] = {"name": name, "labels": {"app.kubernetes.io/part-of": "photogenic",
                                                         "photogenic/stage": spec.name}}
    if options.namespace:
        metadata["namespace"] = options.namespace
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": metadata,
        "spec": {
            "entrypoint": shlex.join(entrypoint),
            "submissionMode": "K8sJobMode",
            "shutdownAfterJobFinishes": True,
            "ttlSecondsAfterFinished": options.ttl_seconds_after_finished,
            "activeDeadlineSeconds": int(spec.timeout_hours * 3600),
            "backoffLimit": spec.retries,
            "rayClusterSpec": {
                "rayVersion": RAY_VERSION,
                "enableInTreeAutoscaling": True,
                # the head runs the stage's driver: the merge and the pool-wide decisions, no rows
                "headGroupSpec": {"rayStartParams": {"num-cpus": "0"},
                                  "template": _pod("ray-head", Resources(cpus=2, memory_gb=max(resources.memory_gb, 4)),
                                                   options, gpus=0)},
                "workerGroupSpecs": groups,
            },
        },
    }


def _group(kind: str, resources: Resources, options: RayJobOptions, *, gpus: int, replicas: int,
           max_replicas: int) -> dict[str, Any]:
    return {
        "groupName": kind,
        "replicas": replicas,
        "minReplicas": 0,
        "maxReplicas": max_replicas,
        "rayStartParams": {},
        "template": _pod("ray-worker", resources, options, gpus=gpus),
    }


def _pod(container: str, resources: Resources, options: RayJobOptions, *, gpus: int) -> dict[str, Any]:
    limits: dict[str, Any] = {"cpu": _cpus(resources.cpus), "memory": f"{math.ceil(resources.memory_gb * 1024)}Mi"}
    if gpus:
        limits[options.gpu_resource] = gpus
    spec: dict[str, Any] = {
        "containers": [{
            "name": container,
            "image": options.image,
            "resources": {"requests": dict(limits), "limits": limits},
            # the object store's credentials and the cluster's endpoints, as on every KFP task
            "envFrom": [{"secretRef": {"name": options.secret_name}},
                        {"configMapRef": {"name": options.config_map_name}}],
        }],
    }
    if gpus:
        spec["nodeSelector"] = dict(options.gpu_node_selector)
        spec["tolerations"] = [dict(t) for t in options.gpu_tolerations]
    return {"spec": spec}


def _cpus(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{math.ceil(value * 1000)}m"


# -- launching -------------------------------------------------------------------------------------
GROUP, VERSION, PLURAL = "ray.io", "v1", "rayjobs"
#: where a RayJob's driver leaves its report, under the run's DVC remote: JOBS_FOLDER/<job>/REPORT
JOBS_FOLDER, REPORT = "rayjobs", "result.json"


class RayJobFailed(PhotogenicError):
    """The stage's RayJob failed or ran out of time: the runner's step or task fails with it (and
    its retry policy applies); the message names the job and where its driver's log is."""


def submit_and_wait(api: Any, manifest: dict[str, Any], namespace: str, *, poll_seconds: float = 10.0,
                    timeout_seconds: float | None = None, sleep=None, clock=None) -> dict[str, Any]:
    """Create the RayJob with ``api`` (a kubernetes ``CustomObjectsApi``) and wait until KubeRay
    reports it finished; return its status. A job that failed, or did not finish within
    ``timeout_seconds``, raises RayJobFailed (the task fails, and KFP's retry policy applies)."""
    import time

    sleep, clock = sleep or time.sleep, clock or time.monotonic
    name = manifest["metadata"]["name"]
    api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, manifest)
    started = clock()
    while True:
        status = (api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name) or {}).get("status") or {}
        deployment, job = status.get("jobDeploymentStatus"), status.get("jobStatus")
        if deployment in ("Complete", "Failed") or job in ("SUCCEEDED", "FAILED", "STOPPED"):
            if job == "SUCCEEDED":
                return status
            raise RayJobFailed(f"RayJob {namespace}/{name}: {deployment or '?'}, job {job or '?'}: "
                               f"{status.get('message') or status.get('reason') or 'no message'}. Its driver's log: "
                               f"`kubectl logs -n {namespace} job/{name}` (kept for ttlSecondsAfterFinished, "
                               f"{manifest.get('spec', {}).get('ttlSecondsAfterFinished', 0)} s).")
        if timeout_seconds is not None and clock() - started > timeout_seconds:
            raise RayJobFailed(f"RayJob {namespace}/{name} did not finish within {timeout_seconds:.0f} s "
                               f"(last status: {deployment or 'none yet'})")
        sleep(poll_seconds)


@dataclass(frozen=True)
class StageJob:
    """One run of a stage as a RayJob, whichever runner launches it (a KFP task,
    photogenic.kfp.task; a ZenML step, photogenic.kfp.rayjob_stage): its name, and its folder
    under the run's DVC remote, where the job's driver leaves its report and the launcher what
    the driver reads."""

    stage: str
    name: str
    folder: str

    @classmethod
    def new(cls, stage: str, remote: str, where: str) -> StageJob:
        """``where``: what names ``remote`` to the user, for the error when it is no object store."""
        if not is_url(remote):
            raise ConfigError(f"A stage run as a RayJob reports through the object store: set {where} to an "
                              f"s3:// URL (it is {remote or 'unset'!r}).")
        name = job_name(stage, uuid.uuid4().hex[:10])
        return cls(stage, name, posixpath.join(remote, JOBS_FOLDER, name))

    @property
    def report(self) -> str:
        return posixpath.join(self.folder, REPORT)

    def run(self, config: RunConfig, task_args: list[str], image: str, api: Any = None,
            options: RayJobOptions | None = None) -> str:
        """Run ``python -m photogenic.kfp.task TASK_ARGS --output REPORT`` as this RayJob of
        ``image`` on a cluster sized from the stage's declared resources, in this process's
        namespace, through ``api`` (default: the Kubernetes API of the pod's service account, else
        the kubeconfig's context); wait for it, and return the report its driver wrote."""
        spec = get_stage(self.stage)
        command = ["python", "-m", "photogenic.kfp.task", *task_args, "--output", self.report]
        manifest = rayjob_manifest(spec, config, command, self.name, options or RayJobOptions(image=image))
        submit_and_wait(api if api is not None else custom_objects_api(), manifest, current_namespace(),
                        timeout_seconds=spec.timeout_hours * 3600)
        return read_text(self.report)
