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


# -- a ZenML step's stage as a RayJob (photogenic.kfp.rayjob_stage) --------------------------------

def _ingested_project(tmp_path, monkeypatch):
    """A DVC project (its default remote an object store) holding an ingested pool, versioned."""
    import numpy as np
    from PIL import Image

    from photogenic.kfp import rayjob_stage
    from photogenic.stages.ingest import ingest
    from tests.conftest import wds_members, write_tar

    project = tmp_path / "project"
    (project / ".dvc").mkdir(parents=True)
    monkeypatch.chdir(project)
    monkeypatch.setattr(rayjob_stage, "remote_url", lambda found: "memory://bucket/dvc" if found == project else None)
    members = []
    for key in range(6):
        picture = np.full((96, 128, 3), 40 * key, np.uint8)
        path = tmp_path / f"{key}.png"
        Image.fromarray(picture).save(path)
        members += wds_members(f"{key:09d}", path.read_bytes(), f"picture {key}", ext="png")
    write_tar(project / "data" / "raw" / "p.tar", members)
    config = config_for(project / "data", "ingest.sources.0.uri=raw/p.tar", "filter.workers=0",
                        "filter.ocr.enabled=false", "filter.nsfw.enabled=false")
    return project, config, ingest(config, progress=False).ref.with_dvc_md5("0123456789abcdef0123456789abcdef.dir")


class DriverApi(FakeApi):
    """What the job's driver does on the cluster, on this disk: read the config and the upstream
    report the launcher handed it, run the stage, and leave its details and report in the
    object store (pulling and pushing through DVC left out: the data are already here)."""

    def __init__(self, states, project):
        super().__init__(states)
        self.project, self.entry = project, None

    def create_namespaced_custom_object(self, group, version, namespace, plural, body):
        import shlex

        from photogenic.kfp.task import task_config, task_report, write_details
        from photogenic.dataset.atomic import write_text
        from photogenic.dataset.ref import DatasetRef
        from photogenic.stages.runner import run_stage

        super().create_namespaced_custom_object(group, version, namespace, plural, body)
        self.entry = shlex.split(body["spec"]["entrypoint"])
        arg = lambda name: self.entry[self.entry.index(name) + 1]  # noqa: E731
        stage = arg("--stage")
        config = task_config(stage, {"config_file": arg("--config-file")})
        assert config.data.root == "data"  # the image holds the project elsewhere: the root goes relative
        inputs = {}
        if stage == "auto_filter":
            upstream = json.loads(arg("--upstream"))
            assert upstream["stage"] == "ingest" and list(upstream["datasets"]) == ["ingested"]
            ref = DatasetRef.model_validate(upstream["datasets"]["ingested"])
            assert ref.path == "data/datasets/ingested" and ref.dvc_md5.endswith(".dir")
            inputs = {"filter.input": ref}
        else:  # a stage reading sources has no upstream: it reads them as the job's pods see them
            assert "--upstream" not in self.entry
        output = run_stage(stage, config, progress=False, inputs=inputs)
        write_details(arg("--details-to"), output.stats, output.reports)
        made = output.ref.with_dvc_md5("fedcba9876543210fedcba9876543210.dir")
        write_text(arg("--output"), task_report(stage, {made.name: made}, {}, {}, self.project))


def test_a_zenml_step_runs_its_stage_as_a_rayjob_and_returns_the_job_s_output(tmp_path, monkeypatch):
    from photogenic.dataset.atomic import read_text
    from photogenic.dataset.store import Dataset
    from photogenic.kfp.rayjob_stage import run_stage_as_rayjob

    project, config, ingested = _ingested_project(tmp_path, monkeypatch)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t-never-in-argv")
    api = DriverApi([{"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED"}], project)
    output = run_stage_as_rayjob("auto_filter", config, {"filter.input": ingested}, "registry.example/p:2", api=api)

    body = api.created[0][1]
    _validate(body)
    assert body["spec"]["shutdownAfterJobFinishes"] is True
    worker = body["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
    assert worker["image"] == "registry.example/p:2" and worker["resources"]["limits"]["cpu"] == "2"
    assert api.entry[:5] == ["python", "-m", "photogenic.kfp.task", "--stage", "auto_filter"]
    assert "--dvc-remote" in api.entry and api.entry[api.entry.index("--dvc-remote") + 1] == "memory://bucket/dvc"
    assert "s3cr3t" not in body["spec"]["entrypoint"]
    assert "s3cr3t" not in read_text(api.entry[api.entry.index("--config-file") + 1])
    # the step's output: the dataset the job made, on this disk, with the version the job reported
    candidates = project / "data" / "datasets" / "candidates"
    made = Dataset(str(candidates), "candidates").ref()
    assert output.ref == made.with_dvc_md5("fedcba9876543210fedcba9876543210.dir")
    assert output.stats["ray_job"] == body["metadata"]["name"] and "funnel" in output.stats
    assert output.reports["funnel_report"].startswith(f"memory://bucket/dvc/rayjobs/{body['metadata']['name']}/")
    assert "<html" in read_text(output.reports["funnel_report"]).lower()


def test_ingest_goes_out_as_a_rayjob_with_no_upstream_and_returns_the_job_s_dataset(tmp_path, monkeypatch):
    from photogenic.dataset.store import Dataset
    from photogenic.kfp.rayjob_stage import run_stage_as_rayjob

    project, config, ingested = _ingested_project(tmp_path, monkeypatch)
    here = Dataset(ingested.path, ingested.name).ref()
    api = DriverApi([{"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED"}], project)
    output = run_stage_as_rayjob("ingest", config, {}, "registry.example/p:2", api=api)

    _validate(api.created[0][1])
    assert api.entry[:5] == ["python", "-m", "photogenic.kfp.task", "--stage", "ingest"]
    # the job ingested the same sources: the same content as the run here, under the job's version
    assert output.ref == here.with_dvc_md5("fedcba9876543210fedcba9876543210.dir")
    assert output.stats["ray_job"] == api.created[0][1]["metadata"]["name"] and output.ref.rows == 6


def test_a_failed_rayjob_fails_the_step_with_the_job_s_message(tmp_path, monkeypatch):
    from photogenic.kfp.rayjob_stage import run_stage_as_rayjob

    project, config, ingested = _ingested_project(tmp_path, monkeypatch)
    failed = FakeApi([{"jobDeploymentStatus": "Failed", "jobStatus": "FAILED", "message": "worker OOMKilled"}])
    with pytest.raises(RayJobFailed, match=r"OOMKilled.*kubectl logs -n \S+ job/photogenic-auto-filter-"):
        run_stage_as_rayjob("auto_filter", config, {"filter.input": ingested}, "img:1", api=failed)
    with pytest.raises(Exception, match="no DVC version"):
        run_stage_as_rayjob("auto_filter", config, {"filter.input": ingested.with_dvc_md5(None)}, "img:1", api=failed)
    with pytest.raises(Exception, match="does not run on the data plane"):
        run_stage_as_rayjob("curation", config, {}, "img:1", api=failed)
    monkeypatch.setattr("photogenic.kfp.rayjob_stage.remote_url", lambda found: "/srv/dvc-store")
    with pytest.raises(Exception, match="default DVC remote.*s3://"):
        run_stage_as_rayjob("auto_filter", config, {"filter.input": ingested}, "img:1", api=failed)


def test_every_data_plane_stage_s_zenml_step_can_go_out_as_a_rayjob():
    """A stage added to RAY_STAGES needs its step to take ``ray_job`` and hand it on to
    ``run_dataset_stage``, and the pipeline to pass it (``curation_chain``)."""
    import importlib
    import inspect

    from photogenic.kfp.rayjob import RAY_STAGES
    from pipelines import data_curation

    chain = inspect.getsource(data_curation.curation_chain)
    for stage in RAY_STAGES:
        step = getattr(importlib.import_module(f"steps.{stage}"), stage)
        assert "ray_job" in inspect.signature(step.entrypoint).parameters, f"steps/{stage}.py takes no ray_job"
        assert "ray_job=ray_job" in inspect.getsource(step.entrypoint), f"steps/{stage}.py does not hand on ray_job"
        assert f"{stage}(" in chain or f"{stage}.with_options(" in chain, f"curation_chain calls no {stage} step"
    assert chain.count("ray_job=ray_job") >= len(RAY_STAGES)
