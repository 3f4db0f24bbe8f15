"""Launching a TrainJob and waiting for it, through the real kubernetes client against an API
server on 127.0.0.1 (tests/support/kube_api.py) whose stand-in operator moves the job to
Complete or Failed: the job created once and valid for Trainer's CRD, a failure reported with
Trainer's reason and message, a retried task taking over its first attempt's job (or replacing
a failed one), a timeout that deletes the job, and the API's refusals explained."""

from __future__ import annotations

import json
import threading
import time

import pytest

from photogenic.config import TrainingResources
from photogenic.errors import ConfigError, DataError
from photogenic.kfp import environment
from photogenic.kfp.trainjob import job_name, node_command, render_trainjob
from photogenic.kfp.trainjob_launch import (
    LaunchSettings,
    condition,
    current_namespace,
    custom_objects_api,
    submit,
    wait,
)
from tests.support.kube_api import KubeAPI

NAMESPACE = "team-a"


@pytest.fixture
def kube(tmp_path, monkeypatch):
    """The API server, reached as a task outside a pod reaches it: through a kubeconfig."""
    servers = []

    def start(operator=None) -> KubeAPI:
        server = KubeAPI(operator)
        servers.append(server)
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        monkeypatch.delenv("POD_NAMESPACE", raising=False)
        monkeypatch.setenv("KUBECONFIG", str(server.kubeconfig(tmp_path / "kubeconfig", NAMESPACE)))
        return server

    yield start
    for server in servers:
        server.stop()


def _job(name: str = "", **kwargs) -> dict:
    return render_trainjob(name=name or job_name("pretrain", "run-1"), namespace=NAMESPACE, image="photogenic:test",
                           command=node_command("pretrain"), resources=TrainingResources(nodes=2, gpus=4),
                           **kwargs)


def _operator(api: KubeAPI, *steps: tuple[str, str, str], delay: float = 0.2):
    def run(job: dict) -> None:
        for kind, reason, message in steps:
            time.sleep(delay)
            api.set_condition(job["metadata"]["namespace"], job["metadata"]["name"], kind, reason, message)
    return run


def test_a_job_is_created_once_and_waited_for_until_complete(kube):
    api = kube()
    api.operator = _operator(api, ("Complete", "JobsCompleted", "jobs are completed"))
    client = custom_objects_api()
    assert current_namespace() == NAMESPACE  # the kubeconfig context's
    job = _job()
    created = submit(client, job)
    assert created["metadata"]["name"] == job["metadata"]["name"] and created["metadata"]["uid"]
    done = wait(client, NAMESPACE, job["metadata"]["name"], timeout_s=60, poll_s=0.05)
    assert condition(done, "Complete")["reason"] == "JobsCompleted"
    assert api.created() == [job["metadata"]["name"]]
    reads = [r for r in api.requests if r[0] == "GET"]
    assert len(reads) >= 2 and all(code == 200 for *_, code in reads)  # it polled until the condition came


def test_a_failed_job_fails_the_task_with_trainers_reason(kube):
    api = kube()
    api.operator = _operator(api, ("Failed", "DeadlineExceeded", "TrainJob exceeded its activeDeadlineSeconds"))
    client = custom_objects_api()
    name = submit(client, _job())["metadata"]["name"]
    with pytest.raises(DataError) as failed:
        wait(client, NAMESPACE, name, timeout_s=60, poll_s=0.05)
    text = str(failed.value)
    assert f"TrainJob {NAMESPACE}/{name} failed (DeadlineExceeded)" in text
    assert "exceeded its activeDeadlineSeconds" in text
    assert f"kubectl -n {NAMESPACE} logs -l jobset.sigs.k8s.io/jobset-name={name}" in text


def test_a_retried_task_takes_over_its_jobs_or_replaces_a_failed_one(kube):
    api = kube()
    client = custom_objects_api()
    job = _job()
    name = job["metadata"]["name"]
    submit(client, job)
    # the first attempt's pod died; its job runs on: the retry waits for that one
    again = submit(client, job)
    assert again["metadata"]["uid"] == api.jobs[(NAMESPACE, name)]["metadata"]["uid"]
    assert api.created() == [name]
    api.set_condition(NAMESPACE, name, "Failed", "BackoffLimitExceeded", "node 1 exited with code 1")
    # ...but a job that failed is run again
    replaced = submit(client, job, poll_s=0.01)
    assert replaced["metadata"]["uid"] != again["metadata"]["uid"]
    assert api.created() == [name, name]
    assert ("DELETE", NAMESPACE, name, 200) in api.requests
    assert condition(api.jobs[(NAMESPACE, name)], "Failed") is None


def test_a_job_past_the_stage_timeout_is_deleted(kube):
    api = kube()  # no operator: the job never finishes
    client = custom_objects_api()
    name = submit(client, _job())["metadata"]["name"]
    started = time.monotonic()
    with pytest.raises(DataError, match=r"did not finish within .* this task deleted it"):
        wait(client, NAMESPACE, name, timeout_s=0.5, poll_s=0.1)
    assert time.monotonic() - started < 10
    assert (NAMESPACE, name) not in api.jobs


def test_the_api_servers_refusals_are_explained(kube):
    api = kube()
    client = custom_objects_api()
    with pytest.raises(DataError, match=r"HTTP 422.*metadata\.name"):
        submit(client, _job(name="Not_A_Label"))
    api.forbid = True
    with pytest.raises(DataError) as forbidden:
        submit(client, _job())
    assert "HTTP 403" in str(forbidden.value) and "infra/k8s/trainjob-rbac.yaml" in str(forbidden.value)
    assert environment.RUN_SERVICE_ACCOUNT in str(forbidden.value)


def test_a_job_deleted_under_the_task_fails_it(kube):
    api = kube()
    client = custom_objects_api()
    name = submit(client, _job())["metadata"]["name"]
    threading.Timer(0.2, lambda: api.jobs.pop((NAMESPACE, name))).start()
    with pytest.raises(DataError, match="was deleted while this task waited"):
        wait(client, NAMESPACE, name, timeout_s=30, poll_s=0.05)


def test_the_task_needs_the_compiled_launch_settings(monkeypatch):
    monkeypatch.delenv(environment.TRAINJOB_SETTINGS_ENV, raising=False)
    with pytest.raises(ConfigError, match="Recompile"):
        LaunchSettings.from_env()
    settings = LaunchSettings(image="registry.example/photogenic:abc", gpu_tolerations=[{"key": "nvidia.com/gpu"}])
    monkeypatch.setenv(environment.TRAINJOB_SETTINGS_ENV, settings.to_env())
    assert LaunchSettings.from_env() == settings
    monkeypatch.setenv("POD_NAMESPACE", "from-the-downward-api")
    assert current_namespace() == "from-the-downward-api"


def test_the_training_task_launches_the_job_from_its_config_and_fails_with_it(kube, tmp_path, monkeypatch):
    """``run_task``'s multi-node path (photogenic.kfp.task._train_on_nodes) up to the wait: the
    job sized from training.resources, made from the compiled settings, in the pod's namespace,
    its nodes told the task's own parameters and the training context; a Failed job fails the
    task with Trainer's message."""
    from photogenic.config import load_config
    from photogenic.dataset.ref import DatasetRef
    from photogenic.kfp import task

    api = kube()
    api.operator = _operator(api, ("Failed", "TrainingFailed", "node 1 exited with code 137"))
    settings = LaunchSettings(image="registry.example/photogenic:abc", secret_name="team-s3",
                              config_map_name="team-env", gpu_node_selector={"pool": "gpu"},
                              gpu_tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                              poll_s=0.05)
    monkeypatch.setenv(environment.TRAINJOB_SETTINGS_ENV, settings.to_env())
    monkeypatch.setenv("POD_NAMESPACE", "team-b")
    config = load_config(None, [f"data.root={tmp_path / 'data'}", "training.resources.nodes=3",
                                "training.resources.gpus=8", "training.resources.cpus=32", "training.resources.memory_gb=200"])
    dataset = DatasetRef(name="ingested", path=str(tmp_path / "data" / "datasets" / "ingested"), manifest="",
                         content_hash="", rows=10)  # unversioned: no lineage tags to compute
    run = {"runner": "kfp", "id": "run-7", "name": "nightly"}
    with pytest.raises(DataError, match=r"TrainJob team-b/photogenic-pretrain-\w+ failed \(TrainingFailed\): node 1"):
        task._train(
            "pretrain", config, dataset, run, ["--seed", "3", "--upstream", '{"stage": "ingest"}'])
    (job,) = api.jobs.values()
    assert job["metadata"]["namespace"] == "team-b" and job["metadata"]["name"] == job_name("pretrain", "run-7")
    trainer = job["spec"]["trainer"]
    assert (trainer["numNodes"], trainer["numProcPerNode"]) == (3, 8)
    assert trainer["resourcesPerNode"]["limits"] == {"cpu": "32", "memory": "200Gi", "nvidia.com/gpu": "8"}
    assert trainer["image"] == "registry.example/photogenic:abc"
    command = trainer["command"]
    assert command[:6] == ["python", "-m", "photogenic.kfp.task", "--stage", "pretrain", "--train-node"]
    assert command[6:10] == ["--seed", "3", "--upstream", '{"stage": "ingest"}']
    context = json.loads(command[command.index("--training-context") + 1])
    assert context["lineage_tags"] == {"trainjob": job["metadata"]["name"]}  # how the task finds its model
    sources = {next(iter(v["valueFrom"].values()))["name"] for v in trainer["env"]}
    assert sources == {"team-s3", "team-env"}
    pod = job["spec"]["runtimePatches"][0]["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"][0]
    assert pod["template"]["spec"]["template"]["spec"]["nodeSelector"] == {"pool": "gpu"}
    assert job["spec"]["activeDeadlineSeconds"] == 96 * 3600
