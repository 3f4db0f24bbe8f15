"""Wherever the project logs or stores something, a URI's user info is redacted: params.yaml,
MLflow params and tags, ZenML metadata, the log lines and tracebacks of the CLI and of a KFP
task, and the errors that name a DVC remote. The config refuses credentials outright; these are
the places where a URI from elsewhere (the environment, a DVC config, a run parameter) could
still pass."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import pytest
import yaml

from photogenic.errors import ConfigError, DataError
from photogenic.safety.secrets import RedactingFilter, redact_tree
from tests.conftest import REPO

SECRET = "s3cr3t-Pa55"
REMOTE = f"s3://user:{SECRET}@minio.example:9000/bucket"
TRACKING = f"http://user:{SECRET}@mlflow.example:5000"


def test_params_yaml_never_holds_a_uri_s_credentials(tmp_path):
    from photogenic.versioning.dvc import write_params

    write_params(tmp_path, {"dvc": {"remote": REMOTE}, "training": {"tracking": {"tracking_uri": TRACKING}},
                            "ingest": {"sources": [{"uri": REMOTE}]}, "seed": 3})
    text = (tmp_path / "params.yaml").read_text()
    assert SECRET not in text and "user@" not in text
    assert yaml.safe_load(text)["ingest"]["sources"][0]["uri"] == "s3://***@minio.example:9000/bucket"


def test_mlflow_params_and_tags_never_hold_a_uri_s_credentials():
    from photogenic.training.tracking import Tracker

    class Recorder:
        def __init__(self):
            self.calls = []

        def log_params(self, params):
            self.calls.append(params)

        def set_tags(self, tags):
            self.calls.append(tags)

    mlflow = Recorder()
    tracker = Tracker(mlflow, "run")
    tracker.log_params({"recipe": {"checkpoint": REMOTE, "steps": 5}})
    tracker.set_tags({"source": TRACKING, "none": None})
    assert mlflow.calls == [{"recipe.checkpoint": "s3://***@minio.example:9000/bucket", "recipe.steps": "5"},
                            {"source": "http://***@mlflow.example:5000"}]


def test_zenml_metadata_never_holds_a_uri_s_credentials(monkeypatch):
    from steps import metadata

    recorded = []
    monkeypatch.setattr(metadata, "_zenml_log_metadata", lambda **kwargs: recorded.append(kwargs))
    metadata.log_metadata({"dataset": {"path": REMOTE, "rows": 3}, "files": [TRACKING]}, run_id_name_or_prefix="r")
    assert recorded == [{"metadata": {"dataset": {"path": "s3://***@minio.example:9000/bucket", "rows": 3},
                                      "files": ["http://***@mlflow.example:5000"]}, "run_id_name_or_prefix": "r"}]


def test_redact_tree_keeps_the_shape_and_everything_else():
    tree = {"a": [1, 2.5, None, True, (REMOTE, "plain")], "b": {"c": "user@example.com"}}
    assert redact_tree(tree) == {"a": [1, 2.5, None, True, ("s3://***@minio.example:9000/bucket", "plain")],
                                 "b": {"c": "user@example.com"}}


def test_a_log_record_s_traceback_is_redacted_too():
    record = None
    try:
        raise OSError(f"cannot reach {REMOTE}")
    except OSError:
        record = logging.LogRecord("photogenic.x", logging.ERROR, __file__, 1, "push to %s failed", (REMOTE,),
                                   sys.exc_info())
    RedactingFilter().filter(record)
    text = logging.Formatter().format(record)
    assert SECRET not in text and text.count("s3://***@minio.example:9000/bucket") == 2


@pytest.mark.parametrize("given, env", [(REMOTE, ""), ("", REMOTE)])
def test_a_kfp_task_refuses_a_dvc_remote_with_a_password(monkeypatch, given, env):
    from photogenic.kfp import environment

    monkeypatch.setenv("DVC_REMOTE_URL", env)
    with pytest.raises(ConfigError, match="carries a password") as caught:
        environment.dvc_remote(given)
    assert SECRET not in str(caught.value)
    monkeypatch.setenv("DVC_REMOTE_URL", "ssh://deploy@host/dvc")  # a user name alone is how ssh remotes work
    assert environment.dvc_remote() == "ssh://deploy@host/dvc"


def test_a_failed_version_push_never_names_the_remote_s_credentials(monkeypatch, tmp_path):
    from photogenic.config import load_config
    from photogenic.dataset.ref import DatasetRef
    from photogenic.kfp import task
    from photogenic.stages.registry import get_stage

    remote = f"https://user:{SECRET}@dav.example/dvc"  # what a DVC config the task did not write may hold

    def failing(*args, **kwargs):
        raise DataError(f"`dvc push` failed: cannot reach {remote}")

    monkeypatch.setattr(task, "remote_url", lambda project: remote)
    monkeypatch.setattr(task, "version_output", failing)
    ref = DatasetRef(name="ingested", path=str(tmp_path), manifest=str(tmp_path / "manifest.parquet"), rows=0,
                     content_hash="x", quarantined=0)
    with pytest.raises(DataError) as caught:
        task._version("ingest", get_stage("ingest"), ref, load_config(None, []), {})
    assert SECRET not in str(caught.value) and "https://***@dav.example/dvc" in str(caught.value)


def test_an_unreadable_config_file_url_is_named_without_its_credentials():
    from photogenic.kfp.task import task_config

    with pytest.raises(DataError, match="Could not read the run's config file") as caught:
        task_config("ingest", {"config_file": f"http://user:{SECRET}@127.0.0.1:9/run.yaml"})
    assert SECRET not in str(caught.value) and "http://***@127.0.0.1:9/run.yaml" in str(caught.value)


_ENTRY_POINTS = {
    # a KFP task: its pod log outlives it
    "kfp": """
        from photogenic.kfp import task
        def run_task(*args, **kwargs):
            logging.getLogger("photogenic.kfp.task").info("pulling from %s", URI)
            raise OSError(f"cannot reach {URI}")
        task.run_task = run_task
        task.main(["--stage", "ingest", "--output", "out.json"])
    """,
    # the photogenic command
    "cli": """
        import importlib
        app = importlib.import_module("photogenic.cli.app")  # the module (the package's `app` is the Typer app)
        def boom():
            logging.getLogger("photogenic.cli").info("pulling from %s", URI)
            raise OSError(f"cannot reach {URI}")
        app.app = boom
        app.main()
    """,
}


@pytest.mark.parametrize("entry", sorted(_ENTRY_POINTS))
def test_log_lines_and_tracebacks_of_an_entry_point_are_redacted(entry, tmp_path):
    script = f"import logging\nURI = {REMOTE!r}\n" + textwrap.dedent(_ENTRY_POINTS[entry])
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.returncode != 0
    assert "pulling from s3://***@minio.example:9000/bucket" in done.stderr, done.stderr
    assert "OSError: cannot reach s3://***@minio.example:9000/bucket" in done.stderr, done.stderr
    assert SECRET not in done.stderr + done.stdout
