"""The native KFP pipeline: compiled IR (every stage, typed and described parameters, the cluster's
Secret and ConfigMap on every task, content-keyed caching, retries and timeouts from the
declarations, GPUs exactly on GPU stages), upload/schedule against a stand-in client, and the
task code in pods that share nothing (tests/cluster/ runs the whole recipe so)."""

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from photogenic.config import load_config
from photogenic.errors import ConfigError, DataError
from photogenic.kfp.parameters import PIPELINE_PARAMETERS, parameter_overrides
from photogenic.kfp.pipeline import CHECK, KfpOptions, compile_pipeline
from photogenic.stages import registry
from photogenic.stages.graph import stage_graph, without_models
from photogenic.stages.registry import STAGES
from photogenic.stages.spec import Resources
from tests.conftest import REPO
from tests.runners import drift


def _compile(tmp_path, stages=STAGES, monkeypatch=None, options=None):
    if monkeypatch is not None:
        monkeypatch.setattr(registry, "STAGES", stages)
        monkeypatch.setattr("photogenic.kfp.pipeline.STAGES", stages)
    path = tmp_path / "pipeline.yaml"
    compile_pipeline(load_config(None), str(path), options or KfpOptions(image="registry.example/photogenic:abc"))
    docs = list(yaml.safe_load_all(path.read_text()))
    return docs[0], (docs[1] if len(docs) > 1 else {})


def _executor(ir, stage):
    return ir["deploymentSpec"]["executors"][ir["components"][f"comp-{stage.replace('_', '-')}"]["executorLabel"]]


def _stage_tasks(ir):
    return {name: task for name, (task, _) in drift.ir_tasks(ir).items() if name != CHECK}


def test_ir_has_every_stage_typed_parameters_and_the_image(tmp_path):
    ir, platform = _compile(tmp_path)
    tasks = _stage_tasks(ir)
    # the whole recipe: the training stages follow the datasets and models they read
    assert {t.replace("-", "_") for t in tasks} == set(STAGES)
    assert tasks["auto-filter"]["dependentTasks"] == ["ingest"]
    assert sorted(tasks["quality-tune"]["dependentTasks"]) == ["package", "pretrain"]
    assert sorted(tasks["evaluate"]["dependentTasks"]) == ["pretrain", "quality-tune"]
    types = {name: p["parameterType"] for name, p in ir["root"]["inputDefinitions"]["parameters"].items()}
    assert types == {"config_file": "STRING", "source_uris": "LIST", "dataset_version": "STRING",
                     "model_checkpoint": "STRING", "steps": "NUMBER_INTEGER", "seed": "NUMBER_INTEGER",
                     "overrides": "LIST", "dvc_remote": "STRING", "only_if_changed": "BOOLEAN", "champion": "STRING"}
    for stage, spec in STAGES.items():
        container = _executor(ir, stage)["container"]
        assert container["image"] == "registry.example/photogenic:abc"
        assert container["command"] == ["python", "-m", "photogenic.kfp.task"]
        assert container["args"][:2] == ["--stage", stage]
        assert container["resources"]["cpuRequest"] == spec.resources.cpus
        # with the embedded default every stage runs on CPUs: no GPU, no GPU node pool
        assert "accelerator" not in container["resources"]
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert not any("nodeSelector" in e or "tolerations" in e for e in k8s.values())


def test_gpu_requests_exactly_on_stages_declaring_gpus(tmp_path, monkeypatch):
    stages = dict(STAGES)
    # declared outright, not derived from the config (the filter's GPUs follow filter.gpus)
    stages["auto_filter"] = replace(STAGES["auto_filter"], resources=Resources(cpus=4, memory_gb=16, gpus=2),
                                    config_resources=None)
    ir, platform = _compile(tmp_path, stages, monkeypatch)
    gpu = _executor(ir, "auto_filter")["container"]["resources"]
    assert gpu["accelerator"]["resourceType"] == "nvidia.com/gpu" and gpu["accelerator"]["resourceCount"] == "2"
    assert "accelerator" not in _executor(ir, "ingest")["container"]["resources"]
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert {name for name, e in k8s.items() if "nodeSelector" in e} == {"exec-auto-filter"}
    assert k8s["exec-auto-filter"]["nodeSelector"] == {"labels": {"nvidia.com/gpu.present": "true"}}
    assert k8s["exec-auto-filter"]["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists",
                                                       "effect": "NoSchedule"}]


def test_the_gpu_recipe_compiles_for_a_cluster(tmp_path):
    """`photogenic kfp compile --config configs/gpu-training.yaml` as a user runs it: GPUs on the
    training and evaluate tasks, the Secret and ConfigMap on every task, retries, timeouts,
    content-keyed caching and a description for every run parameter."""
    out = tmp_path / "p.yaml"
    done = subprocess.run([sys.executable, "-m", "photogenic.cli", "kfp", "compile", "--config",
                           str(REPO / "configs/gpu-training.yaml"), "--out", str(out), "--secret", "team-s3",
                           "--config-map", "team-env"], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    ir, platform = list(yaml.safe_load_all(out.read_text()))
    gpus = {name.removeprefix("comp-"): _executor(ir, name.removeprefix("comp-"))["container"]["resources"]
            .get("accelerator", {}).get("resourceCount") for name in ir["components"]
            if "executorLabel" in ir["components"][name]}
    config = load_config(REPO / "configs/gpu-training.yaml")
    assert gpus["pretrain"] == gpus["quality-tune"] == str(config.training.resources.gpus) != "None"
    assert gpus["evaluate"] == str(config.evaluate.gpus) != "None"
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    tasks = drift.ir_tasks(ir)
    for name, (task, component) in tasks.items():
        executor = k8s[component["executorLabel"]]
        assert [s["secretName"] for s in executor["secretAsEnv"]] == ["team-s3"], name
        assert {p["envVar"] for s in executor["secretAsEnv"] for p in s["keyToEnv"]} == {
            "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
        assert [c["configMapName"] for c in executor["configMapAsEnv"]] == ["team-env"], name
        assert {"MLFLOW_TRACKING_URI", "AWS_ENDPOINT_URL", "DVC_REMOTE_URL"} <= {
            p["envVar"] for c in executor["configMapAsEnv"] for p in c["keyToEnv"]}
        assert task["retryPolicy"]["maxRetryCount"] >= 1 and task["retryPolicy"]["backoffFactor"] == 2.0, name
        if name == CHECK:  # it looks at the inputs as they are now, every run
            assert task["cachingOptions"] == {} or not task["cachingOptions"].get("enableCache")
        else:
            assert task["cachingOptions"] == {"enableCache": True}, name
            spec = STAGES[name.replace("-", "_")]
            assert int(executor["activeDeadlineSeconds"]) == int(spec.timeout_hours * 3600)
            assert task["retryPolicy"]["maxRetryCount"] == spec.retries
            # the content keys: the stage's fingerprint from the check task
            assert task["inputs"]["parameters"]["fingerprint"]["componentInputParameter"].endswith(
                f"fingerprint_{name.replace('-', '_')}")
    described = ir["root"]["inputDefinitions"]["parameters"]
    assert all(p.get("description") for p in described.values()), [n for n, p in described.items()
                                                                    if not p.get("description")]
    # the stages run inside the retraining decision
    condition = next(t for t in ir["root"]["dag"]["tasks"].values() if "triggerPolicy" in t)
    assert "check-inputs-changed" in condition["triggerPolicy"]["condition"]


def test_multi_node_training_tasks_launch_a_trainjob(tmp_path):
    """With training.resources.nodes > 1 the training tasks are small pods that create the
    TrainJob: its image, Secret, ConfigMap, GPU placement and poll interval in their environment,
    their namespace from the downward API; the GPUs go to the job's nodes, not to them."""
    from photogenic.kfp import environment
    from photogenic.kfp.trainjob_launch import LaunchSettings

    out = tmp_path / "p.yaml"
    done = subprocess.run([sys.executable, "-m", "photogenic.cli", "kfp", "compile", "--config",
                           str(REPO / "configs/gpu-training.yaml"), "--set", "training.resources.nodes=4",
                           "--out", str(out), "--image", "registry.example/photogenic:abc", "--secret", "team-s3",
                           "--config-map", "team-env"], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    ir, platform = list(yaml.safe_load_all(out.read_text()))
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    for stage in STAGES:
        executor = _executor(ir, stage)
        env = {e["name"]: e["value"] for e in executor["container"].get("env") or []}
        fields = {f["name"]: f["fieldPath"] for f in k8s[f"exec-{stage.replace('_', '-')}"].get("fieldPathAsEnv") or []}
        if stage not in ("pretrain", "quality_tune"):
            assert environment.TRAINJOB_SETTINGS_ENV not in env and "POD_NAMESPACE" not in fields, stage
            continue
        settings = LaunchSettings(**json.loads(env[environment.TRAINJOB_SETTINGS_ENV]))
        assert settings.image == "registry.example/photogenic:abc"
        assert (settings.secret_name, settings.config_map_name) == ("team-s3", "team-env")
        assert settings.gpu_node_selector == {"nvidia.com/gpu.present": "true"} and settings.gpu_tolerations
        assert fields["POD_NAMESPACE"] == "metadata.namespace"
        resources = executor["container"]["resources"]
        assert "accelerator" not in resources and resources["resourceCpuLimit"] == "1", stage
        assert "nodeSelector" not in k8s[f"exec-{stage.replace('_', '-')}"]
    assert _executor(ir, "evaluate")["container"]["resources"]["accelerator"]["resourceCount"] == "1"


def test_stage_graph_follows_the_declared_datasets_and_models():
    config = load_config(None)
    data = [("ingest", []), ("auto_filter", ["ingest"]), ("pretrain", ["ingest"]), ("curation", ["auto_filter"]),
            ("caption", ["curation"]), ("upsample", ["caption"]), ("package", ["upsample"]),
            ("quality_tune", ["package", "pretrain"]), ("evaluate", ["pretrain", "quality_tune"]),
            ("promote", ["evaluate"])]
    assert stage_graph(config, STAGES) == data
    renamed = load_config(None, ["filter.input=elsewhere"])
    assert stage_graph(renamed, STAGES)[:2] == [("ingest", []), ("auto_filter", [])]
    # models named by registry URI: evaluate starts the graph, promote follows it
    registry = load_config(None, ["evaluate.candidate=models:/m/2", "evaluate.baseline=models:/m/1"])
    assert ("evaluate", []) in stage_graph(registry, STAGES)
    assert without_models(config, STAGES) == []
    unset = load_config(None, ["evaluate.candidate=null"])
    assert without_models(unset, STAGES) == ["evaluate", "promote"]
    # asked for by name without its models, it is an error naming the keys
    with pytest.raises(ConfigError, match="evaluate.candidate"):
        stage_graph(unset, STAGES, only=("evaluate", "promote"))


def test_evaluate_and_promote_compile_when_models_are_named(tmp_path):
    config = load_config(None, ["evaluate.candidate=models:/m/2", "evaluate.baseline=models:/m/1", "evaluate.gpus=1"])
    path = tmp_path / "pipeline.yaml"
    compile_pipeline(config, str(path), KfpOptions(image="registry.example/photogenic:abc"))
    ir = next(yaml.safe_load_all(path.read_text()))
    tasks = _stage_tasks(ir)
    assert tasks["promote"]["dependentTasks"] == ["evaluate"]
    assert "dependentTasks" not in tasks["evaluate"]
    # evaluate's GPUs come from evaluate.gpus; upsample stays on CPUs with the default backend
    assert _executor(ir, "evaluate")["container"]["resources"]["accelerator"]["resourceCount"] == "1"
    assert "accelerator" not in _executor(ir, "upsample")["container"]["resources"]
    assert drift.check_kfp_ir(ir, config) == []


def test_parameters_become_overrides_of_declared_fields():
    assert parameter_overrides({"source_uris": ["s3://b/{0..3}.tar"]}, ("data", "ingest")) == [
        'ingest.sources=[{"kind": "webdataset", "uri": "s3://b/{0..3}.tar"}]']
    assert parameter_overrides({"seed": -1, "steps": 0, "model_checkpoint": ""}, ("ingest",)) == []
    with pytest.raises(ConfigError, match="model_checkpoint='x'.*no stage section"):
        parameter_overrides({"model_checkpoint": "x"}, ("data", "ingest"))
    assert {p.name for p in PIPELINE_PARAMETERS} >= {"config_file", "source_uris", "dataset_version",
                                                     "model_checkpoint", "steps", "seed"}


def _pod(dvc_project, tmp_path, name):
    """A fresh copy of the project as the image holds it: no .git, no DVC cache, no data."""
    import shutil

    pod = tmp_path / name
    shutil.copytree(dvc_project, pod, ignore=shutil.ignore_patterns(".git", "cache", "data", "tmp"))
    return pod


@pytest.mark.slow
def test_container_tasks_pass_datasets_through_the_dvc_remote(tmp_path):
    """Three pods of the compiled package, as on the cluster, with a folder for a DVC remote: the
    check task fingerprints the sources, ingest pushes its dataset, and the auto-filter pod, which
    never saw it, pulls it by the md5 ingest reported. A rerun is served from the cache."""
    from photogenic.kfp.local_run import Cluster, run_package
    from tests.runners.test_data_curation_pipeline import _small_pool

    sources = tmp_path / "bucket" / "shards"
    _small_pool(tmp_path / "bucket-root")  # writes data/raw/sample-pool/00000.tar under it
    sources.mkdir(parents=True)
    (tmp_path / "bucket-root/data/raw/sample-pool/00000.tar").rename(sources / "00000.tar")
    remote = tmp_path / "bucket" / "dvc"
    package = compile_pipeline(load_config(None), str(tmp_path / "p.yaml"), KfpOptions(stages=("ingest", "auto_filter")))
    cluster = Cluster(context=REPO, secrets={"photogenic-s3": {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}},
                      config_maps={"photogenic-env": {"MLFLOW_TRACKING_URI": "", "AWS_ENDPOINT_URL": "",
                                                      "AWS_DEFAULT_REGION": "", "DVC_REMOTE_URL": str(remote)}})
    arguments = {"source_uris": [str(sources / "*.tar")],
                 "overrides": ["ingest.workers=0", "ingest.gate.max_quarantine_share=0.2",
                               "filter.technical.enabled=false"]}
    run = run_package(package, arguments, cluster, tmp_path / "run-1", run_id="run-1")
    assert run.succeeded, [Path(t.log).read_text()[-3000:] for t in run.tasks.values() if t.state == "failed"]
    ingested = json.loads(run.output("ingest"))["datasets"]["ingested"]
    md5 = ingested["dvc_md5"]
    assert (remote / "files" / "md5" / md5[:2] / md5[2:]).exists()  # pushed
    assert ingested["path"] == "data/datasets/ingested"  # a report names no pod's disk
    assert "no_scm = true" in (tmp_path / "run-1/ingest-1/image/.dvc/config").read_text()
    result = json.loads(run.output("auto-filter"))
    assert result["datasets"]["candidates"]["rows"] > 0 and set(result["carried"]) == {"ingested"}
    assert (tmp_path / "run-1/auto-filter-1/image/data/datasets/ingested/manifest.parquet").exists()  # pulled by md5
    again = run_package(package, arguments, cluster, tmp_path / "run-2", run_id="run-2")
    assert [again.tasks[n].state for n in ("check-inputs", "ingest", "auto-filter")] == ["succeeded", "cached", "cached"]
    # a changed shard changes ingest's fingerprint: ingest and what follows run again
    _small_pool(tmp_path / "bucket-root", n=14)
    (tmp_path / "bucket-root/data/raw/sample-pool/00000.tar").replace(sources / "00000.tar")
    changed = run_package(package, arguments, cluster, tmp_path / "run-3", run_id="run-3")
    assert [changed.tasks[n].state for n in ("ingest", "auto-filter")] == ["succeeded", "succeeded"]


def test_evaluation_reaches_the_promote_pod_through_a_dvc_file_of_its_own(dvc_project, tmp_path, monkeypatch):
    """evaluate has no dvc.yaml stage (its models may be registry URIs), yet on a cluster the
    promote pod never sees the evaluate pod's disk: the evaluate task versions its dataset with a
    .dvc file of its own and pushes it, and the promote task pulls it by the md5 it was handed."""
    from photogenic.versioning.dvc import run_dvc, write_params
    from photogenic.versioning.record import version_untracked
    from photogenic.versioning.restore import ensure_dataset
    from tests.support.training_fixtures import write_dataset

    evaluate_pod, promote_pod = _pod(dvc_project, tmp_path, "pod-evaluate"), _pod(dvc_project, tmp_path, "pod-promote")
    configs = {}
    for pod in (evaluate_pod, promote_pod):  # what the task does first in a pod (photogenic.kfp.task)
        run_dvc(pod, "config", "core.no_scm", "true")
        configs[pod] = load_config(None, [f"data.root={pod / 'data'}"])
        write_params(pod, configs[pod].resolved())
    monkeypatch.chdir(evaluate_pod)
    evaluation = write_dataset(evaluate_pod / "data", "evaluation", n=3)
    (Path(evaluation.path) / "results.json").write_text('{"headline": {"visual_appeal": 0.7}}')
    ref = version_untracked("evaluate", evaluation.ref(), configs[evaluate_pod], run={"runner": "kfp", "id": "run-1"})
    assert ref.dvc_md5 and ref.dvc_md5.endswith(".dir")
    assert (tmp_path / "dvc-remote" / "files" / "md5" / ref.dvc_md5[:2] / ref.dvc_md5[2:]).exists()  # pushed

    monkeypatch.chdir(promote_pod)
    there = ref.model_copy(update={"path": str(promote_pod / "data" / "datasets" / "evaluation")})
    with pytest.raises(DataError, match="never versioned"):  # what the promote pod hit before
        ensure_dataset(there.with_dvc_md5(None), project=promote_pod, dvc_file=True)
    assert ensure_dataset(there, project=promote_pod, dvc_file=True) == "restored"
    assert json.loads((promote_pod / "data/datasets/evaluation/results.json").read_text())["headline"] == {
        "visual_appeal": 0.7}
    assert ensure_dataset(there, project=promote_pod, dvc_file=True) == "present"


class FakeKfpClient:
    """Records the calls photogenic makes, answering as kfp.Client's server would."""

    def __init__(self, pipelines=None):
        from types import SimpleNamespace as NS

        self.ns = NS
        self.pipelines = dict(pipelines or {})  # name -> id
        self.versions = {pid: [f"{pid}-v0"] for pid in self.pipelines.values()}
        self.calls = []

    def get_pipeline_id(self, name):
        return self.pipelines.get(name)

    def upload_pipeline(self, path, pipeline_name=None, description=None):
        list(yaml.safe_load_all(Path(path).read_text()))  # a real package: the IR, then the platform spec
        self.calls.append(("upload_pipeline", pipeline_name))
        pid = f"p-{len(self.pipelines)}"
        self.pipelines[pipeline_name] = pid
        self.versions[pid] = [f"{pid}-v0"]
        return self.ns(pipeline_id=pid)

    def upload_pipeline_version(self, path, pipeline_version_name, pipeline_id=None, description=None):
        self.calls.append(("upload_pipeline_version", pipeline_version_name, pipeline_id))
        self.versions[pipeline_id].append(f"{pipeline_id}-v{len(self.versions[pipeline_id])}")
        return self.ns(pipeline_version_id=self.versions[pipeline_id][-1])

    def list_pipeline_versions(self, pipeline_id, sort_by=None, page_size=None):
        assert sort_by == "created_at desc"
        ids = list(reversed(self.versions[pipeline_id]))[:page_size]
        return self.ns(pipeline_versions=[self.ns(pipeline_version_id=i) for i in ids])

    def create_experiment(self, name):
        self.calls.append(("create_experiment", name))
        return self.ns(experiment_id=f"e-{name}")

    def create_recurring_run(self, **kwargs):
        self.calls.append(("create_recurring_run", kwargs))
        return self.ns(recurring_run_id="r-1")


def test_upload_creates_then_versions_the_pipeline(tmp_path):
    from photogenic.kfp.client import upload

    package = tmp_path / "p.yaml"
    compile_pipeline(load_config(None), str(package))
    client = FakeKfpClient()
    first = upload(client, str(package), "photogenic", version_name="v1")
    assert first == {"pipeline_id": "p-0", "version_id": "p-0-v0", "created": "pipeline"}
    second = upload(client, str(package), "photogenic", version_name="v2")
    assert second == {"pipeline_id": "p-0", "version_id": "p-0-v1", "created": "version"}
    assert client.calls == [("upload_pipeline", "photogenic"), ("upload_pipeline_version", "v2", "p-0")]


def test_schedule_makes_a_recurring_run_without_catchup_one_at_a_time():
    from photogenic.kfp.client import schedule

    client = FakeKfpClient({"photogenic": "p-7"})
    out = schedule(client, "photogenic", "0 0 3 * * *", "nightly", params={"seed": 1})
    assert out["recurring_run_id"] == "r-1" and out["version_id"] == "p-7-v0"
    kwargs = client.calls[-1][1]
    assert kwargs["cron_expression"] == "0 0 3 * * *" and kwargs["no_catchup"] is True
    assert kwargs["max_concurrency"] == 1 and kwargs["pipeline_id"] == "p-7" and kwargs["params"] == {"only_if_changed": True, "seed": 1}
    with pytest.raises(ConfigError, match="6-field cron.*did you mean '0 0 3 \\* \\* \\*'"):
        schedule(client, "photogenic", "0 3 * * *", "nightly")
    with pytest.raises(ConfigError, match="kfp upload"):
        schedule(FakeKfpClient(), "photogenic", "0 0 3 * * *", "nightly")
