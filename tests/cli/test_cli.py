"""The command line: help everywhere, and user errors as a message with a non-zero exit."""

import subprocess
import sys

import pytest

COMMANDS = [[], ["sample-pool"], ["run"], ["step"], ["config"], ["data"], ["data", "ls"],
            ["curation"], ["curation", "export"], ["curation", "import"], ["curation", "simulate"]]


def photogenic(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "photogenic.cli", *args], capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "photogenic")
def test_every_command_has_help(command):
    done = photogenic(*command, "--help")
    assert done.returncode == 0, done.stderr
    assert "Usage" in done.stdout


def test_config_error_is_one_message_not_a_traceback(tmp_path):
    (tmp_path / "bad.yaml").write_text("ingest:\n  workers: many\n")
    done = photogenic("config", "--config", str(tmp_path / "bad.yaml"))
    assert done.returncode == 2
    assert "ingest.workers" in done.stderr and "Traceback" not in done.stderr


def test_unknown_stage_lists_the_stages(tmp_path):
    done = photogenic("step", "upscale", "--config", str(tmp_path / "none.yaml"))
    assert done.returncode == 2 and "does not exist" in done.stderr
    (tmp_path / "ok.yaml").write_text("{}\n")
    done = photogenic("step", "upscale", "--config", str(tmp_path / "ok.yaml"))
    assert done.returncode == 2 and "Unknown stage 'upscale'" in done.stderr and "ingest" in done.stderr


def test_step_with_missing_sources_fails_cleanly(tmp_path):
    (tmp_path / "ok.yaml").write_text(f"data: {{root: {tmp_path / 'data'}}}\n")
    done = photogenic("step", "ingest", "--config", str(tmp_path / "ok.yaml"), "--quiet")
    assert done.returncode == 2 and "matches no files" in done.stderr and "Traceback" not in done.stderr


def test_data_ls_with_nothing_yet(tmp_path):
    done = photogenic("data", "ls", cwd=tmp_path)
    assert done.returncode == 0 and "No datasets yet" in done.stdout
