"""Multi-node training: the Kubeflow Trainer TrainJob rendered from a stage's resources, checked
against Trainer's own CRD schema (tests/infra/crds/, vendored), and the job's command run on two
"nodes" of this machine, with the rendezvous environment Trainer's torch runtime gives each pod
and with a c10d rendezvous: one gloo group, one model trained, registered once."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from photogenic.config import TrainingResources, load_config
from photogenic.kfp.crd_schema import crd_errors
from photogenic.kfp.trainjob import job_name, render_trainjob, step_command
from tests.support.training_fixtures import tiny_overrides, write_dataset

REPO = Path(__file__).resolve().parents[2]
CRD = yaml.safe_load((REPO / "tests" / "infra" / "crds" / "trainer.kubeflow.org_trainjobs.yaml").read_text())
SECRET = {"photogenic-s3": {"AWS_ACCESS_KEY_ID": "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY": "AWS_SECRET_ACCESS_KEY"}}
CONFIG_MAP = {"photogenic-env": {k: k for k in ("MLFLOW_TRACKING_URI", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION",
                                                "DVC_REMOTE_URL")}}
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def _job(resources: TrainingResources, **kwargs):
    defaults = dict(name=job_name("pretrain", "run-1234"), namespace="kubeflow",
                    image="registry.example.com/photogenic:0123abcd", command=step_command("pretrain", "/cfg/run.yaml"),
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
    assert trainer["command"] == ["torchrun", "-m", "photogenic.cli", "step", "pretrain", "--quiet",
                                  "--config", "/cfg/run.yaml"]
    assert job["spec"]["runtimeRef"] == {"apiGroup": "trainer.kubeflow.org", "kind": "ClusterTrainingRuntime",
                                         "name": "torch-distributed"}
    env = {v["name"]: v["valueFrom"] for v in trainer["env"]}
    assert env["AWS_SECRET_ACCESS_KEY"] == {"secretKeyRef": {"name": "photogenic-s3", "key": "AWS_SECRET_ACCESS_KEY"}}
    assert env["MLFLOW_TRACKING_URI"] == {"configMapKeyRef": {"name": "photogenic-env", "key": "MLFLOW_TRACKING_URI"}}
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


def test_the_command_carries_the_runs_overrides():
    assert step_command("quality_tune", "configs/gpu-training.yaml", ["training.quality_tune.max_steps=10", "seed=3"]) == [
        "torchrun", "-m", "photogenic.cli", "step", "quality_tune", "--quiet", "--config", "configs/gpu-training.yaml",
        "--set", "training.quality_tune.max_steps=10", "--set", "seed=3"]


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


def _resolve(variables: list[dict], objects: dict[str, dict[str, str]]) -> dict[str, str]:
    """The container's environment as the kubelet builds it from the job's env entries, with
    ``objects`` standing in for the cluster's Secrets and ConfigMaps."""
    env = {}
    for v in variables:
        if "value" in v:
            env[v["name"]] = v["value"]
        else:
            ref = next(iter(v["valueFrom"].values()))
            env[v["name"]] = objects[ref["name"]][ref["key"]]
    return env


@pytest.mark.parametrize("rendezvous", ["operator", "c10d"])
def test_two_nodes_run_the_jobs_command_and_train_one_model(tmp_path, rendezvous):
    """``operator``: each node's environment is what Trainer's torch runtime sets (PET_*, static
    rendezvous at node 0); ``c10d``: the same command with explicit torchrun flags and a c10d
    rendezvous, as a pod that launches its own processes would run it."""
    write_dataset(tmp_path, "ingested", n=16)
    # one compute thread per "node": two nodes share this machine's cores
    cfg = load_config(None, tiny_overrides(tmp_path, steps=6, **{"training.pretrain.batch_size": 2,
                                                                  "training.pretrain.threads": 1}))
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(cfg.resolved()))
    # the run's overrides reach every node on the command line: 4 steps, not the file's 6
    command = step_command("pretrain", str(config), ["training.pretrain.max_steps=4"])
    job = _job(TrainingResources(nodes=2, gpus=0, cpus=1, memory_gb=2), command=command,
               env={"PYTHONPATH": str(REPO)})
    assert crd_errors(job, CRD) == []
    trainer = job["spec"]["trainer"]
    objects = {"photogenic-s3": {"AWS_ACCESS_KEY_ID": "test-key", "AWS_SECRET_ACCESS_KEY": "test-secret"},
               "photogenic-env": {"MLFLOW_TRACKING_URI": os.environ["MLFLOW_TRACKING_URI"],
                                  "AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_DEFAULT_REGION": "us-east-1",
                                  "DVC_REMOTE_URL": str(tmp_path / "remote")}}
    container_env = _resolve(trainer["env"], objects)
    assert trainer["command"][0] == "torchrun"
    torchrun = [sys.executable, "-m", "torch.distributed.run"]
    port = _free_port()  # the operator's is 29500 (MASTER_PORT); here any free one stands in
    nodes = []
    for rank in range(trainer["numNodes"]):
        if rendezvous == "operator":
            # what Trainer's torch plugin sets on node `rank` (pkg/runtime/framework/plugins/torch),
            # with the master's service name replaced by loopback
            launcher = {"PET_NNODES": str(trainer["numNodes"]), "PET_NPROC_PER_NODE": str(trainer["numProcPerNode"]),
                        "PET_NODE_RANK": str(rank), "PET_MASTER_ADDR": "127.0.0.1", "PET_MASTER_PORT": str(port)}
            command = [*torchrun, *trainer["command"][1:]]
        else:
            launcher = {}
            command = [*torchrun, "--nnodes", str(trainer["numNodes"]), "--nproc_per_node",
                       str(trainer["numProcPerNode"]), "--rdzv-backend", "c10d", "--rdzv-endpoint",
                       f"127.0.0.1:{port}", *trainer["command"][1:]]
        log = (tmp_path / f"node-{rank}.log").open("w")
        nodes.append((subprocess.Popen(command, cwd=tmp_path, env={**os.environ, **container_env, **launcher},
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
