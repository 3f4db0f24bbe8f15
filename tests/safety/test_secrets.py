"""Secrets come from the environment and never leak: not into the config (and so params.yaml,
run metadata, MLflow params), not into logs or error messages, not onto command lines."""

from __future__ import annotations

import importlib
import json
import logging
import os
import stat
import subprocess
import sys
import types
from pathlib import Path

import pytest

from photogenic.config import load_config
from photogenic.errors import ConfigError, DataError
from photogenic.safety.secrets import RedactingFilter, mlflow_credentials_to_environment, redact
from tests.conftest import REPO

SECRET = "s3cr3t-Pa55"


@pytest.mark.parametrize("override", [
    f"training.tracking.tracking_uri=https://alice:{SECRET}@mlflow.example.com",
    f"ingest.sources.0.uri=https://bob:{SECRET}@files.example.com/shard.tar",
    f"data.root=s3://key:{SECRET}@bucket/data",
])
def test_a_password_in_the_config_is_refused_without_echoing_it(override):
    with pytest.raises(ConfigError) as caught:
        load_config(None, [override])
    message = str(caught.value)
    assert override.split("=", 1)[0] in message and "environment" in message
    assert SECRET not in message


def test_a_user_name_alone_is_refused_too_a_token_is_often_one():
    with pytest.raises(ConfigError, match="MLFLOW_TRACKING_USERNAME") as caught:
        load_config(None, [f"training.tracking.tracking_uri=https://{SECRET}@mlflow.example.com"])
    assert SECRET not in str(caught.value)
    # an address that merely holds an @ is no URI with user info
    assert load_config(None, ["training.tracking.experiment=team@photogenic"]).training.tracking.experiment == \
        "team@photogenic"


def test_params_yaml_and_run_metadata_never_see_the_environment_s_password(tmp_path, monkeypatch):
    from photogenic.training.tracking import configured_uri
    from photogenic.versioning.dvc import write_params

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"https://alice:{SECRET}@mlflow.example.com/x")
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    config = load_config(None, [])
    assert configured_uri(config.training.tracking) == "https://mlflow.example.com/x"
    assert os.environ["MLFLOW_TRACKING_USERNAME"] == "alice" and os.environ["MLFLOW_TRACKING_PASSWORD"] == SECRET
    write_params(tmp_path, config.resolved())
    assert SECRET not in (tmp_path / "params.yaml").read_text()
    # credentials the environment already holds are not overwritten by the URI's
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "from-env")
    assert mlflow_credentials_to_environment(f"http://x:{SECRET}@h:5000") == "http://h:5000"
    assert os.environ["MLFLOW_TRACKING_PASSWORD"] == "from-env"


def test_log_lines_are_redacted_by_the_cli_handler(monkeypatch, capsys):
    cli = importlib.import_module("photogenic.cli.app")  # the module (the package's `app` is the Typer app)

    logger = logging.getLogger("photogenic")
    before = list(logger.handlers)
    monkeypatch.setattr(sys, "argv", ["photogenic", "--help"])
    monkeypatch.setattr(cli, "exit_now", lambda code: None)
    try:
        with pytest.raises(SystemExit):
            cli.main()
        added = [h for h in logger.handlers if h not in before]
        assert any(isinstance(f, RedactingFilter) for h in added for f in h.filters)
        logging.getLogger("photogenic.test").warning("pushing to %s", f"s3://AKIA:{SECRET}@bucket/x")
        err = capsys.readouterr().err
        assert "s3://***@bucket/x" in err and SECRET not in err
    finally:
        for handler in logger.handlers[len(before):]:
            logger.removeHandler(handler)
        logger.propagate = True


def test_redact_covers_every_uri_in_a_text():
    text = f"remote https://u:{SECRET}@a.example/x and s3://k:{SECRET}@b/y, not an email a@b.c"
    assert redact(text) == "remote https://***@a.example/x and s3://***@b/y, not an email a@b.c"


def _fake_python(tmp_path, body: str):
    script = tmp_path / "fake-python"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return types.SimpleNamespace(executable=str(script))


def test_dvc_errors_do_not_echo_a_remote_s_credentials(tmp_path, monkeypatch):
    import photogenic.versioning.dvc as dvc

    message = f"ERROR: failed to push data to the cloud - https://user:{SECRET}@dav.example/x"
    monkeypatch.setattr(dvc, "sys", _fake_python(tmp_path, f"echo '{message}' >&2\nexit 1\n"))
    with pytest.raises(DataError) as caught:
        dvc.run_dvc(tmp_path, "push")
    assert "https://***@dav.example/x" in str(caught.value) and SECRET not in str(caught.value)


def test_dvc_transfers_have_a_time_limit_and_leave_no_process_behind(tmp_path, monkeypatch):
    import photogenic.versioning.dvc as dvc

    pid_file = tmp_path / "child.pid"
    monkeypatch.setattr(dvc, "sys", _fake_python(tmp_path, f"sleep 300 &\necho $! > {pid_file}\nwait\n"))
    monkeypatch.setenv("PHOTOGENIC_DVC_TIMEOUT", "1")
    with pytest.raises(DataError, match=r"`dvc pull` did not finish in 1 s .* PHOTOGENIC_DVC_TIMEOUT"):
        dvc.run_dvc(tmp_path, "pull")
    child = int(pid_file.read_text())
    assert not Path(f"/proc/{child}").exists() or "zombie" in Path(f"/proc/{child}/status").read_text().lower()
    assert dvc.command_timeout(("status",)) == dvc.LOCAL_TIMEOUT  # local commands keep their own limit


def test_the_stack_recipe_never_puts_a_secret_on_a_command_line(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls.jsonl"
    recorder = f"""#!{sys.executable}
import json, os, sys
values = {{}}
for arg in sys.argv[1:]:
    if arg.startswith("--values=@"):
        values = json.load(open(arg[len("--values=@"):]))
        mode = oct(os.stat(arg[len("--values=@"):]).st_mode & 0o777)
        values["__mode__"] = mode
with open({str(calls)!r}, "a") as out:
    out.write(json.dumps({{"argv": [os.path.basename(sys.argv[0])] + sys.argv[1:], "values": values}}) + "\\n")
"""
    for tool in ("zenml", "dvc"):
        (bin_dir / tool).write_text(recorder)
        (bin_dir / tool).chmod(0o755)
    secrets = {"AWS_ACCESS_KEY_ID": "AKIA" + SECRET, "AWS_SECRET_ACCESS_KEY": "aws-" + SECRET,
               "MLFLOW_TRACKING_USERNAME": "alice", "MLFLOW_TRACKING_PASSWORD": 'ml"' + SECRET}
    env = {**os.environ, **secrets, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "ZENML_SERVER_URL": "https://zenml.example.com", "KFP_HOST": "https://kfp.example.com",
           "S3_BUCKET": "s3://photogenic", "CONTAINER_REGISTRY": "registry.example.com/p",
           "MLFLOW_TRACKING_URI": "https://mlflow.example.com", "TMPDIR": str(tmp_path)}
    done = subprocess.run(["bash", str(REPO / "infra/zenml/kubeflow-stack.sh")], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in calls.read_text().splitlines()]
    for record in records:
        for value in secrets.values():
            assert value not in " ".join(record["argv"]), record["argv"]
    given = {k: v for r in records for k, v in r["values"].items()}
    assert given["aws_secret_access_key"] == "aws-" + SECRET and given["password"] == 'ml"' + SECRET
    assert given["__mode__"] == "0o600"
    assert [p for p in tmp_path.iterdir() if p.name.startswith("tmp")] == []  # the values files are gone

    env["MLFLOW_TRACKING_URI"] = f"https://alice:{SECRET}@mlflow.example.com"
    refused = subprocess.run(["bash", str(REPO / "infra/zenml/kubeflow-stack.sh")], env=env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "MLFLOW_TRACKING_USERNAME" in refused.stderr
