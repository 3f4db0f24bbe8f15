"""The whole recipe as the compiled KFP pipeline runs it on a cluster: every task a process of its
own in a fresh copy of the image's files, with its own HOME and TMPDIR, sharing nothing with the
others but an S3 API and an MLflow tracking server, both reached through the Secret and
ConfigMap the pipeline names. Then lineage from a third directory that holds nothing, a rerun
served from the cache, a scheduled run that skips, and the two faults: the object store dying in
the middle of a push, and the tracking server stopped before training."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from mlflow import MlflowClient

from photogenic.config import load_config
from photogenic.kfp import environment
from photogenic.kfp.local_run import Cluster, run_package
from photogenic.kfp.pipeline import KfpOptions, compile_pipeline
from photogenic.versioning.remote import read_published_versions, read_version_file
from tests.cluster.conftest import KEYS, REGION, S3, start_mlflow
from tests.conftest import REPO
from tests.runners.test_data_curation_pipeline import _small_pool
from tests.support.training_fixtures import tiny_overrides

pytestmark = pytest.mark.cluster

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _recipe_config(s3: S3, *extra: str):
    """The tiny recipe's config, as a user's config file in the bucket would hold it: the sources
    and the ground truth the SIMULATED annotators read live in the bucket."""
    def keep(overrides):
        return [o for o in overrides if not o.startswith(("data.root=", "dvc.enabled="))]

    return load_config(None, [
        "ingest.workers=0", "ingest.gate.max_quarantine_share=0.2", "filter.technical.enabled=false",
        "filter.workers=0", "curation.score_column=null",
        f"curation.simulate.ground_truth={s3.url('raw', 'sample-pool', 'ground_truth.parquet')}",
        *keep(tiny_overrides(Path("data"), "pretrain", steps=2)), *keep(tiny_overrides(Path("data"), "quality_tune", steps=2)),
        "evaluate.max_prompts=4", "evaluate.sampling.num_inference_steps=2", "evaluate.sampling.batch_size=4",
        "evaluate.bootstrap=100", *extra])


def _bucket(s3: S3, tmp_path: Path, config) -> dict:
    """The pool and the config file in the bucket; the run form's arguments."""
    _small_pool(tmp_path / "pool")
    pool = tmp_path / "pool" / "data" / "raw" / "sample-pool"
    s3.upload(pool / "00000.tar", "raw", "sample-pool", "00000.tar")
    s3.upload(pool / "ground_truth.parquet", "raw", "sample-pool", "ground_truth.parquet")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config.resolved(), sort_keys=False))
    return {"config_file": s3.upload(tmp_path / "config.yaml", "config.yaml"),
            "source_uris": [s3.url("raw", "sample-pool", "*.tar")], "dataset_version": "nightly-1"}


def _cluster(s3_endpoint: str, tracking_uri: str, bucket_url) -> Cluster:
    return Cluster(
        context=REPO,
        secrets={environment.SECRET_NAME: dict(KEYS)},
        config_maps={environment.CONFIG_MAP_NAME: {
            "MLFLOW_TRACKING_URI": tracking_uri, "AWS_ENDPOINT_URL": s3_endpoint, "AWS_DEFAULT_REGION": REGION,
            "DVC_REMOTE_URL": bucket_url("dvc")}},
        # what `make image` bakes in: the image has no .git
        image_env={"GIT_COMMIT": COMMIT, "OMP_NUM_THREADS": "1"})


def _failures(run) -> str:
    return "\n".join(f"--- {t.name} ({t.state}, {t.attempts} attempts)\n{Path(t.log).read_text()[-4000:]}"
                     for t in run.tasks.values() if t.state == "failed" and t.log)


def _third_directory(tmp_path: Path, s3: S3, tracking_uri: str, *args: str) -> dict:
    """`photogenic ...` in an empty directory with only the tracking server and the remote."""
    where = tmp_path / "third"
    where.mkdir(exist_ok=True)
    env = {"PATH": os.environ["PATH"], "HOME": str(where), "MLFLOW_TRACKING_URI": tracking_uri,
           "DVC_REMOTE_URL": s3.url("dvc"), **s3.env}
    done = subprocess.run([sys.executable, "-m", "photogenic.cli", *args, "--json"], cwd=where, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_the_recipe_runs_in_pods_that_share_nothing(s3, mlflow_server, tmp_path):
    config = _recipe_config(s3)
    arguments = _bucket(s3, tmp_path, config)
    package = compile_pipeline(config, str(tmp_path / "pipeline.yaml"), KfpOptions(image="photogenic:test"))
    cluster = _cluster(s3.endpoint, mlflow_server.uri, s3.url)

    run = run_package(package, arguments, cluster, tmp_path / "run-1", run_id="run-1")
    assert run.succeeded, _failures(run)
    stages = ["ingest", "auto-filter", "curation", "caption", "upsample", "package", "pretrain", "quality-tune",
              "evaluate", "promote"]
    assert {name: run.tasks[name].state for name in stages} == dict.fromkeys(stages, "succeeded")
    report = {name: json.loads(run.output(name)) for name in stages}
    # the curation pod pulled the ingested shards its candidates point into: auto_filter carried them
    assert set(report["auto-filter"]["carried"]) == {"ingested"}
    md5s = {name: r["datasets"][name]["dvc_md5"] for r in report.values() for name in r["datasets"]}
    assert set(md5s) == {"ingested", "candidates", "curated", "captioned", "upsampled", "training_set", "evaluation"}
    # every version is in the remote, with the run, the image's commit and the run form's label
    records = read_published_versions(s3.url("dvc"))
    assert {(r["dataset"], r["dvc_md5"]) for r in records} == set(md5s.items())
    assert {r["run"]["id"] for r in records} == {"run-1"} and {r["git_commit"] for r in records} == {COMMIT}
    assert {r["run"]["dataset_version"] for r in records} == {"nightly-1"}
    # the models are in the tracking server, their files in the bucket
    versions = MlflowClient(mlflow_server.uri).search_model_versions("name='photogenic-t2i'")
    assert len(versions) == 2 and all(v.tags["photogenic.git_commit"] == COMMIT for v in versions)
    assert any(key.startswith("mlflow/") for key in s3.keys("mlflow/"))
    tuned = max(versions, key=lambda v: int(v.version))

    # lineage from a third directory: the tracking server and the remote are all it has
    lineage = _third_directory(tmp_path, s3, mlflow_server.uri, "lineage", "model", f"photogenic-t2i@{tuned.version}")
    assert {name: d["dvc_md5"] for name, d in lineage["datasets"].items()} == {
        name: md5 for name, md5 in md5s.items() if name != "evaluation"}
    assert all(d["made_by"] and d["made_by"][0]["run"]["id"] == "run-1" for d in lineage["datasets"].values())
    assert lineage["git_commit"] == COMMIT
    assert lineage["datasets"]["ingested"]["source_shards"] == [s3.url("raw", "sample-pool", "00000.tar")]
    manifest = read_version_file(s3.url("dvc"), md5s["training_set"], "manifest.parquet")
    sample = pq.read_table(io.BytesIO(manifest), columns=["sample_id"]).column("sample_id")[0].as_py()
    found = _third_directory(tmp_path, s3, mlflow_server.uri, "lineage", "sample", sample)
    assert {"ingested", "candidates", "curated", "training_set"} <= {d["dataset"] for d in found["datasets"]}
    assert {(m["name"], m["version"]) for m in found["models"]} == {("photogenic-t2i", v.version) for v in versions}

    # a rerun with nothing changed is KFP's cache's: only the check of the inputs runs
    again = run_package(package, arguments, cluster, tmp_path / "run-2", run_id="run-2")
    assert again.succeeded, _failures(again)
    assert {name: again.tasks[name].state for name in stages} == dict.fromkeys(stages, "cached")

    # the recurring run asks first whether anything changed since the model in service
    scheduled = run_package(package, {**arguments, "only_if_changed": True, "champion": "photogenic-t2i@champion"},
                            cluster, tmp_path / "run-3", run_id="run-3")
    assert scheduled.tasks["check-inputs"].state == "succeeded"
    assert scheduled.tasks["check-inputs"].outputs["changed"] == "false"
    assert "Nothing changed" in scheduled.tasks["check-inputs"].outputs["reason"]
    assert all(scheduled.tasks[name].state == "skipped" for name in ("condition-1",) if name in scheduled.tasks)
    assert not any(scheduled.tasks.get(name) and scheduled.tasks[name].state == "succeeded" for name in stages)


class Outage:
    """A TCP proxy in front of the S3 server that can die in the middle of a push: after the
    ``after``-th upload into the DVC remote it drops every connection and refuses new ones, as a
    store that went away would; ``restore()`` brings it back."""

    MARK = b"PUT /"

    def __init__(self, target_port: int):
        self.target = ("127.0.0.1", target_port)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.after: int | None = None
        self.uploads = 0
        self.down = False
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def die_after(self, uploads: int) -> None:
        self.after, self.uploads = uploads, 0

    def restore(self) -> None:
        self.after, self.down = None, False

    def _accept(self) -> None:
        while True:
            client, _ = self.sock.accept()
            if self.down:
                client.close()
                continue
            server = socket.create_connection(self.target)
            self.connections += [client, server]
            threading.Thread(target=self._pipe, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, upstream: bool) -> None:
        try:
            while chunk := source.recv(65536):
                if upstream and self.after is not None and b"/dvc/files/md5/" in chunk and self.MARK in chunk:
                    self.uploads += 1
                    if self.uploads > self.after:
                        self._die()
                        return
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.close()
                except OSError:
                    pass

    def _die(self) -> None:
        self.down = True
        for connection in self.connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
                connection.close()
            except OSError:
                pass
        self.connections.clear()


def test_the_object_store_dying_mid_push_fails_the_task_and_a_retried_run_completes(s3, tmp_path, monkeypatch):
    config = _recipe_config(s3)
    arguments = _bucket(s3, tmp_path, config)
    package = compile_pipeline(config, str(tmp_path / "ingest.yaml"), KfpOptions(stages=("ingest",)))
    outage = Outage(int(s3.endpoint.rsplit(":", 1)[1]))
    cluster = _cluster(outage.endpoint, "http://127.0.0.1:9", s3.url)  # ingest needs no tracking server

    outage.die_after(1)  # the second object pushed never arrives
    run = run_package(package, arguments, cluster, tmp_path / "run-1", run_id="run-1")
    ingest = run.tasks["ingest"]
    assert ingest.state == "failed" and ingest.attempts == 3  # the stage's declared retries, all while it is down
    # the first attempt died in the push and names the remote; the retries, with the store still
    # gone, cannot even read the run's config and say so, each in one message
    first = (tmp_path / "run-1" / "ingest-1" / "task.log").read_text()
    assert f"into the DVC remote {s3.url('dvc')} failed" in first
    last = Path(ingest.log).read_text()
    assert f"Could not read the run's config file {arguments['config_file']}" in last
    for log in (first, last):
        assert "Traceback" not in log.split("DataError")[-1]
    # what reached the remote is not a version: nothing recorded it, and no record names it
    assert read_published_versions(s3.url("dvc")) == []

    outage.restore()
    retried = run_package(package, arguments, cluster, tmp_path / "run-2", run_id="run-2")
    assert retried.succeeded, _failures(retried)
    md5 = json.loads(retried.output("ingest"))["datasets"]["ingested"]["dvc_md5"]
    assert [(r["dataset"], r["dvc_md5"]) for r in read_published_versions(s3.url("dvc"))] == [("ingested", md5)]


def test_training_fails_fast_when_the_tracking_server_is_down(s3, tmp_path):
    config = _recipe_config(s3)
    arguments = _bucket(s3, tmp_path, config)
    package = compile_pipeline(config, str(tmp_path / "train.yaml"), KfpOptions(stages=("ingest", "pretrain")))
    server = start_mlflow(s3, tmp_path / "mlflow-server")
    cluster = _cluster(s3.endpoint, server.uri, s3.url)
    started: dict[str, float] = {}

    def on_task(name: str) -> None:
        started.setdefault(name, time.monotonic())
        if name == "pretrain":
            server.stop()  # the tracking server goes away between the data and the training

    try:
        run = run_package(package, arguments, cluster, tmp_path / "run-1", run_id="run-1", on_task=on_task)
    finally:
        server.stop()
    assert run.tasks["ingest"].state == "succeeded"
    pretrain = run.tasks["pretrain"]
    assert pretrain.state == "failed" and pretrain.attempts == 2
    assert f"The MLflow tracking server at {server.uri} does not answer" in Path(pretrain.log).read_text()
    assert time.monotonic() - started["pretrain"] < 120  # two attempts, each failing at once


def test_a_stage_declaring_two_gpus_trains_one_model_in_two_processes(s3, mlflow_server, tmp_path):
    """training.resources.gpus=2: the pretrain pod launches two processes (torchrun) that train
    one model (gloo on this CPU, NCCL on GPUs); the model is registered once."""
    config = _recipe_config(s3, "training.resources.gpus=2")
    arguments = _bucket(s3, tmp_path, config)
    package = compile_pipeline(config, str(tmp_path / "train.yaml"), KfpOptions(stages=("ingest", "pretrain")))
    run = run_package(package, arguments, _cluster(s3.endpoint, mlflow_server.uri, s3.url), tmp_path / "run-1")
    assert run.succeeded, _failures(run)
    log = Path(run.tasks["pretrain"].log).read_text()
    assert "training in 2 processes" in log and "process 1 of 2" in log
    assert len(MlflowClient(mlflow_server.uri).search_model_versions("name='photogenic-t2i'")) == 1
