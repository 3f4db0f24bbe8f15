"""Multi-node training as the compiled pipeline runs it: the pretrain task (training.resources.nodes
= 2) creates a Kubeflow Trainer TrainJob through the real kubernetes client, against a Kubernetes
API on 127.0.0.1 whose stand-in operator runs the job's two nodes as Trainer's torch runtime
would (photogenic.kfp.local_run.run_trainjob: a fresh copy of the image's files per node, the
job's Secret and ConfigMap references filled in, the PET_* rendezvous) and marks the job Complete
when both exit 0. The nodes pull their input from the S3 remote themselves, train one model
together (gloo) and register it once; the task waits, reads the model back from the tracking
server and reports it like a one-pod task."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from photogenic.kfp.local_run import run_package, run_trainjob
from photogenic.kfp.pipeline import KfpOptions, compile_pipeline
from photogenic.kfp.trainjob import job_name
from tests.cluster.test_recipe_on_cluster import COMMIT, _bucket, _cluster, _failures, _recipe_config
from tests.support.kube_api import KubeAPI

pytestmark = pytest.mark.cluster


def test_a_two_node_pretrain_runs_as_a_trainjob(s3, mlflow_server, tmp_path):
    config = _recipe_config(s3, "training.resources.nodes=2", "training.resources.cpus=1",
                            "training.pretrain.batch_size=2")
    arguments = _bucket(s3, tmp_path, config)
    package = compile_pipeline(config, str(tmp_path / "pipeline.yaml"),
                               KfpOptions(image="photogenic:test", stages=("ingest", "pretrain"), trainjob_poll_s=0.5))
    cluster = _cluster(s3.endpoint, mlflow_server.uri, s3.url)
    api = KubeAPI()

    def operator(job: dict) -> None:
        namespace, name = job["metadata"]["namespace"], job["metadata"]["name"]
        failure = run_trainjob(job, cluster, tmp_path / "trainjob", timeout_s=900)
        if failure is None:
            api.set_condition(namespace, name, "Complete", "JobsCompleted", "TrainJob is completed")
        else:
            api.set_condition(namespace, name, "Failed", "TrainingFailed", failure[-1000:])

    api.operator = operator
    # the task reaches the API as its pod's service account would (a kubeconfig stands in for it)
    cluster.image_env["KUBECONFIG"] = str(api.kubeconfig(tmp_path / "kubeconfig", cluster.namespace))
    try:
        run = run_package(package, arguments, cluster, tmp_path / "run-1", run_id="run-1")
    finally:
        api.stop()
    assert run.succeeded, _failures(run) + "\n".join(
        p.read_text()[-3000:] for p in (tmp_path / "trainjob").glob("*/node.log"))

    name = job_name("pretrain", "run-1")
    assert api.created() == [name]  # one job, created in the pod's namespace
    job = api.jobs[(cluster.namespace, name)]
    trainer = job["spec"]["trainer"]
    assert trainer["numNodes"] == 2 and trainer["numProcPerNode"] == 1
    assert trainer["image"] == "photogenic:test" and trainer["command"][:6] == [
        "python", "-m", "photogenic.kfp.task", "--stage", "pretrain", "--train-node"]
    assert job["spec"]["activeDeadlineSeconds"] == 96 * 3600  # pretrain's timeout_hours

    # both nodes pulled the input from the remote and joined one process group; one trained model
    logs = {p.parent.name: p.read_text() for p in (tmp_path / "trainjob").glob("*/node.log")}
    assert sorted(logs) == [f"{name}-node-0", f"{name}-node-1"]
    assert all("input ingested (DVC md5" in text for text in logs.values())
    assert "process 1 of 2 (DistributedType.MULTI_CPU" in "\n".join(logs.values())
    assert "pretrain: model " in logs[f"{name}-node-0"] and "pretrain: model " not in logs[f"{name}-node-1"]

    from mlflow import MlflowClient

    versions = MlflowClient(mlflow_server.uri).search_model_versions("name='photogenic-t2i'")
    assert len(versions) == 1  # registered once, by the job's main process
    version = versions[0]
    assert version.tags["trainjob"] == name and version.tags["photogenic.git_commit"] == COMMIT
    assert version.tags["photogenic.run.id"] == "run-1"

    # the task read that model back and reports it as a one-pod task would
    model = json.loads(run.output("pretrain"))["models"]["pretrained"]
    assert (model["registered_model"], model["model_version"], model["mlflow_run_id"]) == (
        "photogenic-t2i", version.version, version.run_id)
    task_log = Path(run.tasks["pretrain"].log).read_text()
    assert f"TrainJob {cluster.namespace}/{name} is complete" in task_log
    pod_model = tmp_path / "run-1" / "pretrain-1" / "image" / model["path"]
    assert (pod_model / "model_index.json").exists()
