"""The RayJob a data stage runs as on KubeRay: rendered from the stage's declared resources,
valid against the RayJob CRD's schema (KubeRay v1.7.0, vendored in tests/data/kuberay), and
launched and waited for through the Kubernetes API."""

import gzip
import json
from pathlib import Path

import jsonschema
import pytest

from photogenic.kfp.rayjob import RAY_STAGES, RayJobFailed, RayJobOptions, job_name, rayjob_manifest, submit_and_wait
from photogenic.stages.registry import STAGES
from tests.conftest import config_for

SCHEMA = Path(__file__).resolve().parents[1] / "data" / "kuberay" / "rayjob-v1.7.0.schema.json.gz"


def _schema() -> dict:
    return json.loads(gzip.decompress(SCHEMA.read_bytes()))["openAPIV3Schema"]


def _validate(manifest: dict) -> None:
    # Kubernetes quantities are int-or-string; the CRD marks them with x-kubernetes-int-or-string
    jsonschema.Draft7Validator(_schema()).validate(manifest)


def test_a_cpu_stage_renders_a_valid_rayjob(tmp_path):
    config = config_for(tmp_path)
    entry = ["python", "-m", "photogenic.kfp.task", "--stage", "auto_filter", "--output", "s3://b/r.json"]
    manifest = rayjob_manifest(STAGES["auto_filter"], config, entry, job_name("auto_filter", "Run 7"),
                               RayJobOptions(image="registry.example/photogenic:abc", namespace="ml"))
    _validate(manifest)
    spec = manifest["spec"]
    assert manifest["metadata"] == {"name": "photogenic-auto-filter-run-7", "namespace": "ml",
                                    "labels": {"app.kubernetes.io/part-of": "photogenic",
                                               "photogenic/stage": "auto_filter"}}
    assert spec["shutdownAfterJobFinishes"] is True and spec["submissionMode"] == "K8sJobMode"
    assert spec["entrypoint"] == "python -m photogenic.kfp.task --stage auto_filter --output s3://b/r.json"
    groups = spec["rayClusterSpec"]["workerGroupSpecs"]
    assert [g["groupName"] for g in groups] == ["cpu"]
    worker = groups[0]["template"]["spec"]["containers"][0]
    assert worker["image"] == "registry.example/photogenic:abc"
    assert worker["resources"]["limits"] == {"cpu": "2", "memory": "4096Mi"}  # auto_filter's declaration
    assert {"secretRef": {"name": "photogenic-s3"}} in worker["envFrom"]


def test_gpus_in_the_config_add_a_gpu_worker_group(tmp_path):
    config = config_for(tmp_path, "filter.gpus=0.5", "filter.workers=4")
    manifest = rayjob_manifest(STAGES["auto_filter"], config, ["true"], "photogenic-auto-filter-x")
    _validate(manifest)
    gpu = manifest["spec"]["rayClusterSpec"]["workerGroupSpecs"][1]
    assert gpu["groupName"] == "gpu" and gpu["replicas"] == 2  # 4 actors at half a GPU each
    pod = gpu["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}


@pytest.mark.parametrize("stage", RAY_STAGES)
def test_every_data_plane_stage_renders_a_valid_rayjob_with_its_gpus(tmp_path, stage):
    # GPUs declared for every model the stages hold: the upscaler, the captioner, the scorers
    config = config_for(tmp_path, "upsample.backend=diffusion", "upsample.diffusion.checkpoint=x/y",
                        "upsample.diffusion.gpus=2", "caption.model.checkpoint=x/y", "caption.model.gpus=1",
                        "filter.gpus=1")
    manifest = rayjob_manifest(STAGES[stage], config, ["true"], job_name(stage, "x"))
    _validate(manifest)
    groups = {g["groupName"]: g for g in manifest["spec"]["rayClusterSpec"]["workerGroupSpecs"]}
    declared = STAGES[stage].resources_for(config).gpus
    assert declared == {"ingest": 0, "package": 0, "upsample": 2, "caption": 1, "auto_filter": 2}[stage]
    assert set(groups) == ({"cpu", "gpu"} if declared else {"cpu"})
    if declared:
        assert groups["gpu"]["replicas"] == declared


def test_ray_stages_are_the_stages_on_the_data_plane():
    assert set(RAY_STAGES) <= set(STAGES)
    assert set(RAY_STAGES) == {"ingest", "auto_filter", "caption", "upsample", "package"}


def test_the_schema_catches_a_broken_manifest(tmp_path):
    manifest = rayjob_manifest(STAGES["auto_filter"], config_for(tmp_path), ["true"], "photogenic-auto-filter-x")
    manifest["spec"]["shutdownAfterJobFinishes"] = "yes"
    with pytest.raises(jsonschema.ValidationError, match="shutdownAfterJobFinishes|boolean"):
        _validate(manifest)
    del manifest["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]
    manifest["spec"]["shutdownAfterJobFinishes"] = True
    with pytest.raises(jsonschema.ValidationError, match="template"):
        _validate(manifest)


class FakeApi:
    """The Kubernetes custom-objects API as KubeRay drives a RayJob through its states."""

    def __init__(self, states):
        self.states, self.created = list(states), []

    def create_namespaced_custom_object(self, group, version, namespace, plural, body):
        assert (group, version, plural) == ("ray.io", "v1", "rayjobs")
        self.created.append((namespace, body))

    def get_namespaced_custom_object(self, group, version, namespace, plural, name):
        assert name == self.created[-1][1]["metadata"]["name"]
        return {"status": self.states.pop(0)} if self.states else {"status": {}}


def test_the_launcher_waits_for_the_job_and_reports_a_failure():
    manifest = {"metadata": {"name": "j"}}
    running = [{"jobDeploymentStatus": "Initializing"}, {"jobDeploymentStatus": "Running", "jobStatus": "RUNNING"}]
    api = FakeApi(running + [{"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED"}])
    assert submit_and_wait(api, manifest, "ml", sleep=lambda s: None)["jobStatus"] == "SUCCEEDED"
    assert api.created == [("ml", manifest)]
    failed = FakeApi(running + [{"jobDeploymentStatus": "Failed", "jobStatus": "FAILED", "message": "OOMKilled"}])
    with pytest.raises(RayJobFailed, match="OOMKilled"):
        submit_and_wait(failed, manifest, "ml", sleep=lambda s: None)
    ticks = iter(range(0, 1000, 100))
    with pytest.raises(RayJobFailed, match="did not finish"):
        submit_and_wait(FakeApi([]), manifest, "ml", sleep=lambda s: None, timeout_seconds=250,
                        clock=lambda: next(ticks))


def test_compile_ray_runs_the_data_plane_stages_as_rayjobs(tmp_path):
    from photogenic.config import load_config
    from photogenic.kfp.pipeline import KfpOptions, compile_pipeline
    import yaml

    def executors(ray):
        path = tmp_path / f"p{ray}.yaml"
        compile_pipeline(load_config(None), str(path), KfpOptions(image="registry.example/p:1", ray=ray))
        ir = next(yaml.safe_load_all(path.read_text()))
        return {label: e["container"] for label, e in ir["deploymentSpec"]["executors"].items()}

    plain, ray = executors(False), executors(True)
    launched = {label for label, c in ray.items() if "--ray-job" in c["args"]}
    assert launched == {f"exec-{stage.replace('_', '-')}" for stage in RAY_STAGES}
    assert not any("--ray-job" in c["args"] for c in plain.values())
    for label in launched:
        args = ray[label]["args"]
        assert args[args.index("--ray-job") + 1] == "registry.example/p:1"
        # the launcher pod only waits: the RayJob's pods carry the stage's resources
        assert float(ray[label]["resources"]["cpuLimit"]) < float(plain[label]["resources"]["cpuLimit"])


def test_a_ray_job_task_launches_its_own_command_and_hands_on_the_job_s_report(tmp_path, monkeypatch):
    from photogenic.dataset.atomic import write_text
    from photogenic.kfp import task

    remote = "memory://bucket/dvc"
    values = {"config_file": "", "source_uris": [], "dataset_version": "", "model_checkpoint": "", "steps": 0,
              "seed": -1, "overrides": [f"data.root={tmp_path}"], "dvc_remote": remote, "only_if_changed": False,
              "champion": "photogenic-t2i@champion"}

    class Api(FakeApi):
        def create_namespaced_custom_object(self, group, version, namespace, plural, body):
            super().create_namespaced_custom_object(group, version, namespace, plural, body)
            entry = body["spec"]["entrypoint"].split()
            write_text(entry[entry.index("--output") + 1], '{"stage": "auto_filter"}')  # what the job's driver does

    api = Api([{"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED"}])
    argv = ["--stage", "auto_filter", "--seed", "-1", "--output", "/tmp/kfp/out", "--ray-job", "img:1"]
    assert task.run_as_rayjob("auto_filter", values, argv, "img:1", api=api) == '{"stage": "auto_filter"}'
    body = api.created[0][1]
    _validate(body)
    entry = body["spec"]["entrypoint"]
    assert entry.startswith("python -m photogenic.kfp.task --stage auto_filter --seed -1 --output memory://bucket/dvc/rayjobs/")
    assert "--ray-job" not in entry and "/tmp/kfp/out" not in entry
    with pytest.raises(Exception, match="object store"):
        task.run_as_rayjob("auto_filter", {**values, "dvc_remote": ""}, argv, "img:1", api=api)
