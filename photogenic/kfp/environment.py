"""What every task of the pipeline reads from the cluster, not from the image or the run form:
the object store's credentials from a Kubernetes Secret, and the tracking server, the object
store's endpoint and the DVC remote from a ConfigMap (infra/k8s/ creates both). The names are
compile options (``photogenic kfp compile --secret/--config-map``); the keys below are the
environment variables the tasks read, so a task runs the same on a cluster and on a laptop that
sets them.
"""

from __future__ import annotations

import os

from photogenic.errors import ConfigError
from photogenic.safety.secrets import has_password

SECRET_NAME = "photogenic-s3"
CONFIG_MAP_NAME = "photogenic-env"

#: Secret key -> environment variable (boto3, s3fs and dvc-s3 read these)
SECRET_ENV = {"AWS_ACCESS_KEY_ID": "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY": "AWS_SECRET_ACCESS_KEY"}
#: ConfigMap key -> environment variable
CONFIG_MAP_ENV = {
    # the MLflow tracking server every training, evaluation and promotion task logs to
    "MLFLOW_TRACKING_URI": "MLFLOW_TRACKING_URI",
    # the S3 API's endpoint (MinIO, Ceph; empty for AWS): boto3 >= 1.28 reads it
    "AWS_ENDPOINT_URL": "AWS_ENDPOINT_URL",
    "AWS_DEFAULT_REGION": "AWS_DEFAULT_REGION",
    # the DVC remote the tasks pull their inputs from and push their outputs to
    "DVC_REMOTE_URL": "DVC_REMOTE_URL",
}


#: which run a pod belongs to, from its own metadata (the downward API), not from task inputs: a
#: run id among a task's inputs would be in its cache key, and no run would ever hit the cache
RUN_FIELDS = {
    "KFP_RUN_ID": "metadata.labels['pipeline/runid']",
    "KFP_RUN_NAME": "metadata.annotations['pipelines.kubeflow.org/run_name']",
}


def run_identity() -> dict[str, str]:
    """The pipeline run this task belongs to, as the versions log and model tags record it."""
    return {"runner": "kfp", "id": os.environ.get("KFP_RUN_ID", ""), "name": os.environ.get("KFP_RUN_NAME", "")}


def dvc_remote(given: str = "") -> str:
    """The run's DVC remote: the run form's ``dvc_remote``, else the cluster's DVC_REMOTE_URL,
    else empty (the project's default remote). A URL with a password is refused: it would go on
    DVC's command line and into .dvc/config, and the object store's credentials come from the
    Secret."""
    remote = given or os.environ.get(CONFIG_MAP_ENV["DVC_REMOTE_URL"], "")
    if has_password(remote):
        where = "the run's dvc_remote parameter" if given else CONFIG_MAP_ENV["DVC_REMOTE_URL"]
        raise ConfigError(f"The DVC remote URL in {where} carries a password (user:password@). Give the URL without "
                          f"it, and the credentials through the Secret {SECRET_NAME!r} "
                          f"({', '.join(SECRET_ENV)}), which the tasks read from their environment.")
    return remote


#: a training task that launches a Kubeflow Trainer job (``training.resources.nodes`` > 1): the
#: namespace its pod runs in, where it creates the job (the downward API again)
NAMESPACE_FIELD = {"POD_NAMESPACE": "metadata.namespace"}
#: ... and the compile options the job is made from (image, Secret and ConfigMap names, GPU node
#: selector and tolerations, poll interval), as JSON (photogenic.kfp.trainjob_launch.LaunchSettings)
TRAINJOB_SETTINGS_ENV = "PHOTOGENIC_TRAINJOB"
#: the service account standalone Kubeflow Pipelines runs every pod of a run under (KFP sets it per
#: run, not per task: the Create-run form's "Service account" names another);
#: infra/k8s/trainjob-rbac.yaml lets it create, read and delete TrainJobs
RUN_SERVICE_ACCOUNT = "pipeline-runner"
