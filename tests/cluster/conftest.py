"""A cluster on one machine: an S3 API (moto's server mode) and an MLflow tracking server (a real
``mlflow server`` process, SQLite backend, artifacts proxied into the bucket), both on 127.0.0.1,
started and stopped here. The pipeline's tasks reach them only through the environment the
compiled pipeline gives them (photogenic.kfp.local_run, photogenic.kfp.environment)."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest
import s3fs
from moto.server import ThreadedMotoServer

BUCKET = "photogenic-test"
REGION = "us-east-1"
#: moto accepts any credentials; these stand in for the Kubernetes Secret's values
KEYS = {"AWS_ACCESS_KEY_ID": "test-access-key", "AWS_SECRET_ACCESS_KEY": "test-secret-key"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class S3:
    endpoint: str
    server: object = field(repr=False)

    @property
    def env(self) -> dict[str, str]:
        return {**KEYS, "AWS_ENDPOINT_URL": self.endpoint, "AWS_DEFAULT_REGION": REGION}

    def url(self, *parts: str) -> str:
        return "s3://" + "/".join([BUCKET, *parts])

    def client(self):
        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION, aws_access_key_id=KEYS[
            "AWS_ACCESS_KEY_ID"], aws_secret_access_key=KEYS["AWS_SECRET_ACCESS_KEY"])

    def upload(self, path: Path, *key: str) -> str:
        self.client().upload_file(str(path), BUCKET, "/".join(key))
        return self.url(*key)

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]


@pytest.fixture
def s3(monkeypatch):
    """An S3 API on 127.0.0.1 with an empty bucket; this process reaches it through the same
    environment variables the pods get (the autouse fixture's temp HOME has no AWS config)."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    store = S3(f"http://127.0.0.1:{port}", server)
    # fsspec caches one S3FileSystem per set of arguments, and the endpoint comes from the
    # environment, not the arguments: an instance from an earlier test would call its dead server
    s3fs.S3FileSystem.clear_instance_cache()
    # moto keeps its buckets in this process, not in the server: without a reset the next test
    # would find the objects an earlier one pushed (and DVC would skip pushing them)
    urllib.request.urlopen(urllib.request.Request(f"{store.endpoint}/moto-api/reset", method="POST"), timeout=10).close()
    for name, value in store.env.items():
        monkeypatch.setenv(name, value)
    store.client().create_bucket(Bucket=BUCKET)
    yield store
    server.stop()


@dataclass
class MlflowServer:
    uri: str
    process: subprocess.Popen
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()


def start_mlflow(s3: S3, folder: Path, port: int | None = None) -> MlflowServer:
    port = port or free_port()
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "mlflow-server.log"
    env = {**os.environ, **s3.env, "MLFLOW_S3_ENDPOINT_URL": s3.endpoint}
    command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
               "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
               "--artifacts-destination", s3.url("mlflow"), "--workers", "1"]
    with open(log, "w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=folder)
    server = MlflowServer(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mlflow server exited: {log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{server.uri}/health", timeout=2) as response:
                if response.status == 200:
                    return server
        except OSError:
            time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"mlflow server did not answer in 120 s: {log.read_text()[-3000:]}")


@pytest.fixture
def mlflow_server(s3, tmp_path, monkeypatch):
    server = start_mlflow(s3, tmp_path / "mlflow-server")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.uri)
    yield server
    server.stop()
