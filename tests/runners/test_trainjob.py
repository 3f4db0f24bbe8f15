"""Multi-node training: the Kubeflow Trainer TrainJob rendered from a stage's resources, checked
against Trainer's own CRD schema (tests/infra/crds/, vendored), and the torchrun each node runs
(photogenic.stages.training.train_node) on two "nodes" of this machine, with the rendezvous
environment Trainer's torch runtime gives each pod and with a c10d rendezvous: one gloo group,
one model trained, registered once. tests/cluster/test_trainjob_on_cluster.py runs the whole job
from the KFP task that creates it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest
import yaml

from photogenic.config import TrainingResources, load_config
from photogenic.kfp.crd_schema import crd_errors
from photogenic.kfp.environment import CONFIG_MAP_ENV, CONFIG_MAP_NAME, SECRET_ENV, SECRET_NAME
from photogenic.kfp.local_run import Cluster, container_env
from photogenic.kfp.trainjob import job_name, node_command, render_trainjob
from photogenic.stages.training import launch_command
from tests.support.training_fixtures import tiny_overrides, write_dataset

REPO = Path(__file__).resolve().parents[2]
CRD = yaml.safe_load((REPO / "tests" / "infra" / "crds" / "trainer.kubeflow.org_trainjobs.yaml").read_text())
SECRET = {SECRET_NAME: SECRET_ENV}
CONFIG_MAP = {CONFIG_MAP_NAME: CONFIG_MAP_ENV}
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def _job(resources: TrainingResources, **kwargs):
    defaults = dict(name=job_name("pretrain", "run-1234"), namespace="kubeflow",
                    image="registry.example.com/photogenic:0123abcd", command=node_command("pretrain", ["--seed", "3"]),
                    resources=resources, secret_env=SECRET, config_map_env=CONFIG_MAP)
    return render_trainjob(**{**defaults, **kwargs})


def test_a_gpu_job_is_sized_from_the_stage_resources_and_valid_for_the_trainer_crd():
    job = _job(TrainingResources(nodes=4, gpus=8, cpus=64, memory_gb=480),
               node_selector={"nvidia.com/gpu.present": "true"}, tolerations=[GPU_TOLERATION],
               service_account="photogenic-training", active_deadline_s=7 * 24 * 3600)
    assert crd_errors(job, CRD) == []
    trainer = job["spec"]["trainer"]
    assert trainer["numNodes"] == 4 and trainer["numProcPerNode"] == 8  # 32 processes: one per GPU
    assert trainer["resourcesPerNode"] == {
        "requests": {"cpu": "64", "memory": "480Gi", "nvidia.com/gpu": "8"},
        "limits": {"cpu": "64", "memory": "480Gi", "nvidia.com/gpu": "8"}}
    assert trainer["command"] == ["python", "-m", "photogenic.kfp.task", "--stage", "pretrain", "--train-node",
                                  "--seed", "3"]
    assert job["spec"]["runtimeRef"] == {"apiGroup": "trainer.kubeflow.org", "kind": "ClusterTrainingRuntime",
                                         "name": "torch-distributed"}
    env = {v["name"]: v["valueFrom"] for v in trainer["env"]}
    assert env["AWS_SECRET_ACCESS_KEY"] == {"secretKeyRef": {"name": SECRET_NAME, "key": "AWS_SECRET_ACCESS_KEY"}}
    assert env["MLFLOW_TRACKING_URI"] == {"configMapKeyRef": {"name": CONFIG_MAP_NAME, "key": "MLFLOW_TRACKING_URI"}}
    assert set(env) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "MLFLOW_TRACKING_URI", "AWS_ENDPOINT_URL",
                        "AWS_DEFAULT_REGION", "DVC_REMOTE_URL"}
    pod = job["spec"]["runtimePatches"][0]["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"][0]
    assert pod["name"] == "node"  # the runtime's trainer job
    assert pod["template"]["spec"]["template"]["spec"] == {
        "nodeSelector": {"nvidia.com/gpu.present": "true"}, "tolerations": [GPU_TOLERATION],
        "serviceAccountName": "photogenic-training"}
    assert job["spec"]["activeDeadlineSeconds"] == 604800


def test_a_cpu_job_runs_one_process_per_node_and_asks_for_no_gpu():
    job = _job(TrainingResources(nodes=2, gpus=0, cpus=1.5, memory_gb=4))
    assert crd_errors(job, CRD) == []
    trainer = job["spec"]["trainer"]
    assert trainer["numProcPerNode"] == 1
    assert trainer["resourcesPerNode"]["limits"] == {"cpu": "1500m", "memory": "4Gi"}
    assert "runtimePatches" not in job["spec"]


def test_a_node_runs_torchrun_with_the_rendezvous_from_the_operator():
    """A task on one pod starts its processes standalone; a node of a job passes no rendezvous
    flags, so torchrun reads PET_NNODES, PET_NODE_RANK, PET_MASTER_ADDR, ... from the pod."""
    alone = launch_command("pretrain", "c.yaml", "l.json", 2)
    node = launch_command("pretrain", "c.yaml", "l.json", None)
    assert alone[1:5] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    assert node[1:] == ["-m", "torch.distributed.run", "-m", "photogenic.cli", "step", "pretrain", "--quiet",
                        "--config", "c.yaml", "--lineage-file", "l.json"]


def test_job_names_are_rfc1035_labels_stable_per_run():
    name = job_name("quality_tune", "0f1e2d3c-aaaa-bbbb-cccc-1234567890ab")
    assert name == job_name("quality_tune", "0f1e2d3c-aaaa-bbbb-cccc-1234567890ab")
    assert name != job_name("quality_tune", "another run")
    assert name.startswith("photogenic-quality-tune-") and len(name) <= 63
    assert crd_errors(_job(TrainingResources(nodes=2), name=name), CRD) == []


def test_the_validator_refuses_what_the_api_server_would():
    good = _job(TrainingResources(nodes=2))
    typo = json.loads(json.dumps(good))
    typo["spec"]["trainer"]["numNode"] = typo["spec"]["trainer"].pop("numNodes")  # unknown field
    assert any("numNode" in e and "Additional properties" in e for e in crd_errors(typo, CRD))
    wrong_type = json.loads(json.dumps(good))
    wrong_type["spec"]["trainer"]["numNodes"] = "2"
    assert any(e.startswith("spec.trainer.numNodes:") for e in crd_errors(wrong_type, CRD))
    bad_quantity = json.loads(json.dumps(good))
    bad_quantity["spec"]["trainer"]["resourcesPerNode"]["limits"]["memory"] = "8 GB"
    assert any("resourcesPerNode.limits.memory" in e for e in crd_errors(bad_quantity, CRD))
    no_runtime = json.loads(json.dumps(good))
    del no_runtime["spec"]["runtimeRef"]
    assert any("'runtimeRef' is a required property" in e for e in crd_errors(no_runtime, CRD))
    for name in ("Photogenic-Pretrain", "photogenic-" + "x" * 60, "9-starts-with-a-digit"):
        assert any(e.startswith("metadata.name:") for e in crd_errors(_job(TrainingResources(nodes=2), name=name), CRD))
    pytorchjob = {**good, "apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob"}
    assert crd_errors(pytorchjob, CRD) == ["apiVersion/kind kubeflow.org/v1/PyTorchJob is not trainer.kubeflow.org/TrainJob"]


def test_the_rendezvous_variables_are_left_to_the_operator():
    with pytest.raises(ValueError, match="PET_NNODES"):
        _job(TrainingResources(nodes=2), env={"PET_NNODES": "2"})


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("rendezvous", ["operator", "c10d"])
def test_two_nodes_run_the_jobs_command_and_train_one_model(tmp_path, rendezvous):
    """``operator``: each node's environment is what Trainer's torch runtime sets (PET_*, static
    rendezvous at node 0); ``c10d``: the same command with explicit torchrun flags and a c10d
    rendezvous, as a pod that launches its own processes would run it. The job's environment
    comes from its Secret and ConfigMap references, filled as the kubelet fills them."""
    write_dataset(tmp_path, "ingested", n=16)
    # one compute thread per "node": two nodes share this machine's cores
    cfg = load_config(None, tiny_overrides(tmp_path, steps=6, **{"training.pretrain.batch_size": 2,
                                                                  "training.pretrain.threads": 1}))
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(cfg.resolved()))
    # what a node's task hands torchrun: the run's config and lineage in files
    (tmp_path / "lineage.json").write_text(json.dumps({"lineage_tags": {"trainjob": "photogenic-pretrain-x"}}))
    job = _job(TrainingResources(nodes=2, gpus=0, cpus=1, memory_gb=2), env={"PYTHONPATH": str(REPO)})
    assert crd_errors(job, CRD) == []
    trainer = job["spec"]["trainer"]
    cluster = Cluster(context=REPO, secrets={SECRET_NAME: {"AWS_ACCESS_KEY_ID": "test-key",
                                                           "AWS_SECRET_ACCESS_KEY": "test-secret"}},
                      config_maps={CONFIG_MAP_NAME: {"MLFLOW_TRACKING_URI": os.environ["MLFLOW_TRACKING_URI"],
                                                     "AWS_ENDPOINT_URL": "http://127.0.0.1:1",
                                                     "AWS_DEFAULT_REGION": "us-east-1",
                                                     "DVC_REMOTE_URL": str(tmp_path / "remote")}})
    environment = container_env(cluster, trainer["env"])
    # the torchrun of photogenic.stages.training.train_node; the run's overrides (4 steps, not
    # the file's 6) reach every node in the config file the task writes
    cfg4 = load_config(str(config), ["training.pretrain.max_steps=4"])
    config.write_text(yaml.safe_dump(cfg4.resolved()))
    torchrun = launch_command("pretrain", str(config), str(tmp_path / "lineage.json"), None)
    port = _free_port()  # the operator's is 29500 (MASTER_PORT); here any free one stands in
    nodes = []
    for rank in range(trainer["numNodes"]):
        if rendezvous == "operator":
            # what Trainer's torch plugin sets on node `rank` (pkg/runtime/framework/plugins/torch),
            # with the master's service name replaced by loopback
            launcher = {"PET_NNODES": str(trainer["numNodes"]), "PET_NPROC_PER_NODE": str(trainer["numProcPerNode"]),
                        "PET_NODE_RANK": str(rank), "PET_MASTER_ADDR": "127.0.0.1", "PET_MASTER_PORT": str(port)}
            command = torchrun
        else:
            launcher = {}
            command = [*torchrun[:3], "--nnodes", str(trainer["numNodes"]), "--nproc_per_node",
                       str(trainer["numProcPerNode"]), "--rdzv-backend", "c10d", "--rdzv-endpoint",
                       f"127.0.0.1:{port}", *torchrun[3:]]
        log = (tmp_path / f"node-{rank}.log").open("w")
        nodes.append((subprocess.Popen(command, cwd=tmp_path, env={**os.environ, **environment, **launcher},
                                       stdout=log, stderr=subprocess.STDOUT), log))
    outputs = []
    try:
        for rank, (process, log) in enumerate(nodes):
            process.wait(timeout=600)
            log.close()
            outputs.append((tmp_path / f"node-{rank}.log").read_text())
    finally:
        for process, _ in nodes:
            if process.poll() is None:
                process.kill()
    for rank, (process, _) in enumerate(nodes):
        assert process.returncode == 0, f"node {rank}:\n{outputs[rank][-4000:]}"
    both = "\n".join(outputs)
    assert "process 1 of 2 (DistributedType.MULTI_CPU" in both  # the second node joined the group
    assert both.count("pretrain: model ") == 1  # the main process reports the model, once
    summary = json.loads((tmp_path / "models" / "pretrained.json").read_text())
    assert summary["processes"] == 2 and summary["steps"] == 4

    from mlflow import MlflowClient

    versions = MlflowClient().search_model_versions("name='photogenic-t2i'")
    assert [v.tags["stage"] for v in versions] == ["pretrain"]  # registered once
    assert versions[0].tags["trainjob"] == "photogenic-pretrain-x"  # how the task finds it
