"""The native KFP pipeline: compiled IR (every stage, typed parameters, GPUs exactly on GPU
stages), upload/schedule against a stand-in client, and a whole run under kfp.local."""

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
from photogenic.kfp.pipeline import KfpOptions, compile_pipeline
from photogenic.stages import registry
from photogenic.stages.graph import stage_graph, without_models
from photogenic.stages.registry import STAGES
from photogenic.stages.spec import Resources
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


def test_ir_has_every_stage_typed_parameters_and_the_image(tmp_path):
    ir, platform = _compile(tmp_path)
    tasks = ir["root"]["dag"]["tasks"]
    # the whole recipe: the training stages follow the datasets and models they read
    assert {t.replace("-", "_") for t in tasks} == set(STAGES)
    assert tasks["auto-filter"]["dependentTasks"] == ["ingest"]
    assert sorted(tasks["quality-tune"]["dependentTasks"]) == ["package", "pretrain"]
    assert sorted(tasks["evaluate"]["dependentTasks"]) == ["pretrain", "quality-tune"]
    types = {name: p["parameterType"] for name, p in ir["root"]["inputDefinitions"]["parameters"].items()}
    assert types == {"config_file": "STRING", "source_uris": "LIST", "dataset_version": "STRING",
                     "model_checkpoint": "STRING", "steps": "NUMBER_INTEGER", "seed": "NUMBER_INTEGER",
                     "overrides": "LIST", "dvc_remote": "STRING"}
    for stage, spec in STAGES.items():
        container = _executor(ir, stage)["container"]
        assert container["image"] == "registry.example/photogenic:abc"
        assert container["command"] == ["python", "-m", "photogenic.kfp.task"]
        assert container["args"][:2] == ["--stage", stage]
        assert container["resources"]["cpuRequest"] == spec.resources.cpus
        # with the embedded default every stage runs on CPUs: no GPU, no GPU node pool
        assert "accelerator" not in container["resources"]
    assert not platform  # no kfp-kubernetes settings on CPU stages


def test_gpu_requests_exactly_on_stages_declaring_gpus(tmp_path, monkeypatch):
    stages = dict(STAGES)
    stages["auto_filter"] = replace(STAGES["auto_filter"], resources=Resources(cpus=4, memory_gb=16, gpus=2))
    ir, platform = _compile(tmp_path, stages, monkeypatch)
    gpu = _executor(ir, "auto_filter")["container"]["resources"]
    assert gpu["accelerator"]["resourceType"] == "nvidia.com/gpu" and gpu["accelerator"]["resourceCount"] == "2"
    assert "accelerator" not in _executor(ir, "ingest")["container"]["resources"]
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert set(k8s) == {"exec-auto-filter"}
    assert k8s["exec-auto-filter"]["nodeSelector"] == {"labels": {"nvidia.com/gpu.present": "true"}}
    assert k8s["exec-auto-filter"]["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists",
                                                       "effect": "NoSchedule"}]


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
    tasks = ir["root"]["dag"]["tasks"]
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


@pytest.mark.slow
def test_whole_pipeline_runs_under_kfp_local(dvc_project, monkeypatch, tmp_path):
    from photogenic.kfp.pipeline import run_locally
    from photogenic.versioning.dvc import read_lock
    from tests.runners.test_data_curation_pipeline import _small_pool
    from tests.support.training_fixtures import tiny_recipe_overrides

    _small_pool(dvc_project)
    monkeypatch.chdir(dvc_project)
    # no technical scores without the scorer: curation orders equal votes by sample id
    overrides = ["ingest.workers=0", "ingest.gate.max_quarantine_share=0.2", "filter.technical.enabled=false",
                 "curation.score_column=null", *tiny_recipe_overrides(dvc_project / "data")]
    values = {"config_file": "configs/default.yaml", "overrides": overrides, "dataset_version": "nightly-1"}
    outputs = run_locally(load_config(None), values, str(tmp_path / "kfp-root"))
    # the whole recipe, promotion included
    assert set(outputs) == set(STAGES)
    assert outputs["package"]["datasets"]["training_set"]["dvc_md5"].endswith(".dir")
    candidates = outputs["auto_filter"]["datasets"]["candidates"]
    assert candidates["rows"] > 0 and candidates["dvc_md5"].endswith(".dir")
    # evaluate has no dvc.yaml stage; its dataset is versioned in a .dvc file of its own
    evaluation = outputs["evaluate"]["datasets"]["evaluation"]["dvc_md5"]
    assert evaluation.endswith(".dir") and evaluation in (dvc_project / "data/datasets/evaluation.dvc").read_text()
    lock = read_lock(dvc_project)["stages"]
    assert lock["auto_filter"]["outs"][0]["md5"] == candidates["dvc_md5"]
    assert lock["ingest"]["outs"][0]["md5"] == outputs["ingest"]["datasets"]["ingested"]["dvc_md5"]
    versions = [json.loads(line) for line in (dvc_project / "data/versions.jsonl").read_text().splitlines()]
    assert {v["run"]["runner"] for v in versions} == {"kfp"}
    assert {v["run"]["dataset_version"] for v in versions} == {"nightly-1"}


def _container_command(ir, stage, inputs, output):
    """The compiled command line of ``stage`` with KFP's placeholders filled in, as the KFP
    launcher fills them in a pod."""
    import re

    container = _executor(ir, stage)["container"]

    def fill(arg):
        arg = re.sub(r"\{\{\$\.inputs\.parameters\['(\w+)'\]\}\}", lambda m: inputs[m.group(1)], arg)
        return re.sub(r"\{\{\$\.outputs\.parameters\['result'\]\.output_file\}\}", str(output), arg)

    return [sys.executable if part == "python" else part for part in container["command"]] + [
        fill(a) for a in container["args"]]


def _pod(dvc_project, tmp_path, name):
    """A fresh copy of the project as the image holds it: no .git, no DVC cache, no data."""
    import shutil

    pod = tmp_path / name
    shutil.copytree(dvc_project, pod, ignore=shutil.ignore_patterns(".git", "cache", "data", "tmp"))
    return pod


@pytest.mark.slow
def test_container_tasks_pass_datasets_through_the_dvc_remote(dvc_project, tmp_path):
    """Two pods, as on the cluster: ingest pushes its dataset to the run's DVC remote, and the
    auto-filter pod, which never saw it, pulls it by the md5 ingest reported."""
    from tests.runners.test_data_curation_pipeline import _small_pool

    ir, _ = _compile(tmp_path)
    sources = tmp_path / "bucket" / "shards"
    _small_pool(tmp_path / "bucket-root")  # writes data/raw/sample-pool/00000.tar under it
    sources.mkdir(parents=True)
    (tmp_path / "bucket-root/data/raw/sample-pool/00000.tar").rename(sources / "00000.tar")
    remote = tmp_path / "bucket" / "dvc"
    inputs = {p.name: (json.dumps(p.default) if isinstance(p.default, list) else str(p.default))
              for p in PIPELINE_PARAMETERS}
    inputs.update({"source_uris": json.dumps([str(sources / "*.tar")]), "dvc_remote": str(remote),
                   "overrides": json.dumps(["ingest.workers=0", "ingest.gate.max_quarantine_share=0.2",
                                            "filter.technical.enabled=false"]),
                   "run_id": "run-1", "run_name": "photogenic-run-1"})
    ingest_pod = _pod(dvc_project, tmp_path, "pod-ingest")
    done = subprocess.run(_container_command(ir, "ingest", inputs, ingest_pod / "out.json"), cwd=ingest_pod,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    ingested = json.loads((ingest_pod / "out.json").read_text())
    md5 = ingested["datasets"]["ingested"]["dvc_md5"]
    assert (remote / "files" / "md5" / md5[:2] / md5[2:]).exists()  # pushed
    assert "no_scm = true" in (ingest_pod / ".dvc/config").read_text()

    filter_pod = _pod(dvc_project, tmp_path, "pod-filter")
    inputs["upstream_0"] = json.dumps(ingested)
    done = subprocess.run(_container_command(ir, "auto_filter", inputs, filter_pod / "out.json"), cwd=filter_pod,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((filter_pod / "out.json").read_text())
    assert result["datasets"]["candidates"]["rows"] > 0
    assert (filter_pod / "data/datasets/ingested/manifest.parquet").exists()  # pulled by md5


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
        yaml.safe_load(Path(path).read_text())  # a real package
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
    assert kwargs["max_concurrency"] == 1 and kwargs["pipeline_id"] == "p-7" and kwargs["params"] == {"seed": 1}
    with pytest.raises(ConfigError, match="6-field cron.*did you mean '0 0 3 \\* \\* \\*'"):
        schedule(client, "photogenic", "0 3 * * *", "nightly")
    with pytest.raises(ConfigError, match="kfp upload"):
        schedule(FakeKfpClient(), "photogenic", "0 0 3 * * *", "nightly")
