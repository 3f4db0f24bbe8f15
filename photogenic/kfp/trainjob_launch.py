"""A training task's multi-node run: create the stage's TrainJob through the Kubernetes API, wait
until Kubeflow Trainer reports it Complete or Failed, and find the MLflow run its main process
logged (the task then reads the model back from there, photogenic.training.artifact).

The task's pod runs under the pipeline run's service account
(``environment.RUN_SERVICE_ACCOUNT`` unless the run names another), which
infra/k8s/trainjob-rbac.yaml lets do exactly ``VERBS`` on TrainJobs in the namespace. What the
job is made from besides the stage's config (image, Secret and ConfigMap names, GPU node selector
and tolerations) is fixed at compile time and reaches the task as ``LaunchSettings`` in its
environment (photogenic.kfp.pipeline).

A retried task finds the job its first attempt created (the name is stable per run and stage,
``trainjob.job_name``): a running or finished one is waited for, a failed one replaced.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from photogenic.errors import ConfigError, DataError
from photogenic.kfp import environment
from photogenic.kfp.trainjob import TRAINJOB_GROUP, TRAINJOB_PLURAL, TRAINJOB_VERSION

log = logging.getLogger(__name__)

#: what this module asks the API server to do with TrainJobs (the RBAC Role grants exactly these)
VERBS = ("create", "get", "delete")
#: the MLflow run tag (and model version tag) that names the job that trained the model
TRAINJOB_TAG = "trainjob"
#: Trainer v2's terminal conditions (trainer.kubeflow.org/v1alpha1 TrainJobComplete/TrainJobFailed)
COMPLETE, FAILED = "Complete", "Failed"
_SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


@dataclass(frozen=True)
class LaunchSettings:
    """The compile options a TrainJob is made from."""

    image: str
    secret_name: str = environment.SECRET_NAME
    config_map_name: str = environment.CONFIG_MAP_NAME
    gpu_node_selector: dict[str, str] = field(default_factory=dict)
    gpu_tolerations: list[dict[str, str]] = field(default_factory=list)
    #: seconds between two reads of the job's status
    poll_s: float = 30.0

    def to_env(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_env(cls) -> LaunchSettings:
        text = os.environ.get(environment.TRAINJOB_SETTINGS_ENV, "")
        if not text:
            raise ConfigError(
                f"training.resources.nodes is above 1, but this task has no {environment.TRAINJOB_SETTINGS_ENV}: the "
                "pipeline was compiled with a config that trains on one node. Recompile it with this run's config "
                "(`photogenic kfp compile --config ...`).")
        return cls(**json.loads(text))


def custom_objects_api() -> Any:
    """The Kubernetes API as the pod's service account (in a cluster), else as the kubeconfig's
    current context (KUBECONFIG, ~/.kube/config)."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        try:
            # named here: the client reads KUBECONFIG once, when it is imported
            config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))
        except (config.ConfigException, OSError) as exc:
            raise ConfigError("No Kubernetes API to create the job on: this process runs in no pod with a "
                              f"service account, and no kubeconfig names a cluster ({exc}).") from None
    return client.CustomObjectsApi()


def current_namespace() -> str:
    """The task pod's namespace (POD_NAMESPACE, from the downward API), else the service
    account's, else the kubeconfig context's, else ``default``."""
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    if _SERVICE_ACCOUNT_NAMESPACE.exists():
        return _SERVICE_ACCOUNT_NAMESPACE.read_text(encoding="utf-8").strip()
    try:
        from kubernetes import config

        _, active = config.list_kube_config_contexts(config_file=os.environ.get("KUBECONFIG"))
        return (active or {}).get("context", {}).get("namespace") or "default"
    except (config.ConfigException, OSError):
        return "default"


def condition(job: dict[str, Any], kind: str) -> dict[str, Any] | None:
    """The job's condition ``kind`` when it holds (status "True"), else None."""
    for item in (job.get("status") or {}).get("conditions") or []:
        if item.get("type") == kind and item.get("status") == "True":
            return item
    return None


def submit(api: Any, job: dict[str, Any], poll_s: float = 2.0, sleep: Callable[[float], None] = time.sleep) -> dict:
    """Create ``job``; when it exists already (a retried task), take it over, unless it failed:
    then delete it and create it anew."""
    namespace, name = job["metadata"]["namespace"], job["metadata"]["name"]
    for _ in range(60):
        try:
            created = api.create_namespaced_custom_object(TRAINJOB_GROUP, TRAINJOB_VERSION, namespace,
                                                          TRAINJOB_PLURAL, job)
            log.info("created TrainJob %s/%s: %d nodes x %d processes", namespace, name,
                     job["spec"]["trainer"]["numNodes"], job["spec"]["trainer"]["numProcPerNode"])
            return created
        except _api_exception() as exc:
            if exc.status != 409:
                raise _refused("Creating", namespace, name, exc) from None
        existing = _get(api, namespace, name)
        if existing is None:  # deleted in between: create it
            continue
        if condition(existing, FAILED) is None:
            log.info("TrainJob %s/%s exists (an earlier attempt of this task created it): waiting for it", namespace, name)
            return existing
        if not existing["metadata"].get("deletionTimestamp"):
            log.info("TrainJob %s/%s failed in an earlier attempt of this task: deleting it to run it again",
                     namespace, name)
            _delete(api, namespace, name)
        sleep(poll_s)  # until the old one is gone
    raise DataError(f"TrainJob {namespace}/{name} from an earlier attempt did not go away; delete it "
                    f"(kubectl -n {namespace} delete trainjob {name}) and retry.")


def wait(api: Any, namespace: str, name: str, timeout_s: float, poll_s: float,
         clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> dict:
    """Poll the job until a terminal condition: return it Complete; DataError on Failed (with
    Trainer's reason and message) and after ``timeout_s`` (the job is then deleted, so that no
    node keeps its GPUs for a task that gave up)."""
    deadline = clock() + timeout_s
    state = None
    while True:
        job = _get(api, namespace, name, transient_ok=True)
        if job is False:
            pass  # the API did not answer this time: read again at the next poll
        elif job is None:
            raise DataError(f"TrainJob {namespace}/{name} was deleted while this task waited for it.")
        elif condition(job, COMPLETE) is not None:
            log.info("TrainJob %s/%s is complete", namespace, name)
            return job
        elif (failed := condition(job, FAILED)) is not None:
            raise DataError(
                f"TrainJob {namespace}/{name} failed ({failed.get('reason') or 'no reason given'}): "
                f"{failed.get('message') or 'no message'}. Its nodes' logs: kubectl -n {namespace} logs "
                f"-l jobset.sigs.k8s.io/jobset-name={name} --prefix --tail=200")
        else:
            now = [c.get("type") for c in (job.get("status") or {}).get("conditions") or [] if c.get("status") == "True"]
            if now != state:
                log.info("TrainJob %s/%s: %s", namespace, name, ", ".join(now) or "waiting for its pods")
                state = now
        left = deadline - clock()
        if left <= 0:
            _delete(api, namespace, name)
            raise DataError(f"TrainJob {namespace}/{name} did not finish within {timeout_s / 3600:.3g} h (the stage's "
                            "timeout_hours); this task deleted it.")
        sleep(min(poll_s, left))


def tracked_run(job: str) -> str:
    """The MLflow run the job's main process logged (tagged ``TRAINJOB_TAG=job``)."""
    import mlflow

    runs = mlflow.search_runs(search_all_experiments=True, filter_string=f"tags.{TRAINJOB_TAG} = '{job}'",
                              output_format="list", order_by=["attributes.start_time DESC"])
    finished = [r for r in runs if r.info.status == "FINISHED"]
    if not finished:
        raise DataError(f"TrainJob {job} completed, but the tracking server has no finished MLflow run tagged "
                        f"{TRAINJOB_TAG}={job} ({len(runs)} unfinished); its main process logged no model.")
    return finished[0].info.run_id


def _api_exception() -> type[Exception]:
    from kubernetes.client.exceptions import ApiException

    return ApiException


def _get(api: Any, namespace: str, name: str, transient_ok: bool = False) -> dict | None | bool:
    """The job; None when there is none; False when the API did not answer and ``transient_ok``."""
    import urllib3

    try:
        return api.get_namespaced_custom_object(TRAINJOB_GROUP, TRAINJOB_VERSION, namespace, TRAINJOB_PLURAL, name)
    except _api_exception() as exc:
        if exc.status == 404:
            return None
        if transient_ok and (exc.status in (429, 0) or exc.status >= 500):
            log.warning("reading TrainJob %s/%s: HTTP %s %s; reading again", namespace, name, exc.status, exc.reason)
            return False
        raise _refused("Reading", namespace, name, exc) from None
    except urllib3.exceptions.HTTPError as exc:
        if not transient_ok:
            raise
        log.warning("reading TrainJob %s/%s: %s; reading again", namespace, name, exc)
        return False


def _delete(api: Any, namespace: str, name: str) -> None:
    try:
        api.delete_namespaced_custom_object(TRAINJOB_GROUP, TRAINJOB_VERSION, namespace, TRAINJOB_PLURAL, name,
                                            propagation_policy="Foreground")
    except _api_exception() as exc:
        if exc.status != 404:
            raise _refused("Deleting", namespace, name, exc) from None


def _refused(doing: str, namespace: str, name: str, exc: Any) -> DataError:
    try:
        message = json.loads(exc.body or "{}").get("message") or exc.body
    except ValueError:
        message = exc.body
    hint = {403: f" The pipeline run's service account needs {', '.join(VERBS)} on trainjobs.{TRAINJOB_GROUP} in "
                 f"{namespace}: infra/k8s/trainjob-rbac.yaml grants them to {environment.RUN_SERVICE_ACCOUNT}.",
            404: f" Is Kubeflow Trainer installed (kubectl get crd {TRAINJOB_PLURAL}.{TRAINJOB_GROUP})?"}
    return DataError(f"{doing} TrainJob {namespace}/{name} was refused: HTTP {exc.status} {exc.reason}: "
                     f"{message}.{hint.get(exc.status, '')}")
