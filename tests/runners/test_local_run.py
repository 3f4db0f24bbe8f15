"""The local runner of compiled packages (photogenic.kfp.local_run): pods with the image's files
only, fresh homes, the environment from the Secrets and ConfigMaps a task names, conditions,
retries and KFP's cache, on a small pipeline compiled here."""

import json

import pytest

from photogenic.errors import DataError
from photogenic.kfp.local_run import Cluster, image_files, run_package
from tests.conftest import REPO

# a task that reports its world: where it runs, its HOME and TMPDIR, what it sees of the
# environment and of the disk, and fails its first attempt when asked to
REPORT = """
import json, os, pathlib, sys
out, fail_marker = sys.argv[1], sys.argv[2]
if fail_marker != "never" and not pathlib.Path(fail_marker).exists():
    pathlib.Path(fail_marker).write_text("failed once")
    sys.exit(3)
seen = {"cwd": os.getcwd(), "home": os.environ["HOME"], "tmp": os.environ["TMPDIR"],
        "token": os.environ.get("TOKEN"), "endpoint": os.environ.get("ENDPOINT"), "leak": os.environ.get("LEAKY"),
        "files": sorted(os.listdir("."))}
pathlib.Path(out).write_text(json.dumps(seen))
"""


def _package(tmp_path):
    from kfp import compiler, components, dsl, kubernetes

    def component(name):
        return components.load_component_from_text(json.dumps({
            "name": name, "inputs": [{"name": "fail_marker", "type": "String"}],
            "outputs": [{"name": "seen", "type": "String"}],
            "implementation": {"container": {"image": "photogenic:test", "command": ["python", "-c", REPORT],
                                             "args": [{"outputPath": "seen"}, {"inputValue": "fail_marker"}]}}}))

    @dsl.pipeline(name="probe")
    def probe(go: str = "yes", fail_marker: str = "never"):
        first = component("first")(fail_marker=fail_marker)
        first.set_retry(1)
        first.set_caching_options(True)
        kubernetes.use_secret_as_env(first, "team-secret", {"token": "TOKEN"})
        kubernetes.use_config_map_as_env(first, "team-config", {"endpoint": "ENDPOINT"})
        with dsl.If(go == "yes"):
            second = component("second")(fail_marker="never").after(first)
            second.set_caching_options(False)

    path = tmp_path / "probe.yaml"
    compiler.Compiler().compile(probe, str(path))
    return path


def _cluster(**kwargs):
    return Cluster(context=REPO, secrets={"team-secret": {"token": "t0ken"}},
                   config_maps={"team-config": {"endpoint": "http://127.0.0.1:9"}}, **kwargs)


def test_pods_get_the_image_files_fresh_homes_and_only_the_named_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("LEAKY", "from the caller")
    run = run_package(_package(tmp_path), {}, _cluster(), tmp_path / "run")
    assert run.succeeded and run.tasks["second"].state == "succeeded"
    first, second = (json.loads(run.output(n, "seen")) for n in ("first", "second"))
    assert first["token"] == "t0ken" and first["endpoint"] == "http://127.0.0.1:9"
    assert second["token"] is None and first["leak"] is None  # only what the task names, nothing of the caller's
    assert first["home"] != second["home"] and first["cwd"] != second["cwd"]
    assert {"photogenic", "dvc.yaml", "configs", ".dvc"} <= set(first["files"])
    assert not {"tests", ".git", "benchmarks", ".venv"} & set(first["files"])


def test_conditions_retries_and_the_cache(tmp_path):
    package = _package(tmp_path)
    cluster = _cluster()
    marker = tmp_path / "failed-once"
    run = run_package(package, {"go": "no", "fail_marker": str(marker)}, cluster, tmp_path / "run-1")
    assert run.tasks["first"].state == "succeeded" and run.tasks["first"].attempts == 2  # retried once
    assert run.tasks["condition-1"].state == "skipped" and "second" not in run.tasks
    again = run_package(package, {"go": "yes", "fail_marker": str(marker)}, cluster, tmp_path / "run-2")
    assert again.tasks["first"].state == "cached" and again.tasks["second"].state == "succeeded"


def test_a_secret_the_pipeline_names_must_exist(tmp_path):
    with pytest.raises(DataError, match="team-secret"):
        run_package(_package(tmp_path), {}, Cluster(context=REPO, config_maps={"team-config": {"endpoint": "x"}}),
                    tmp_path / "run")


def test_the_image_files_are_what_the_dockerfile_copies(tmp_path):
    image = image_files(REPO, REPO / "infra/docker/Dockerfile", tmp_path / "image")
    assert (image / "photogenic" / "config.py").exists() and (image / ".dvc" / "config").exists()
    assert (image / "data" / "prompts" / "sample_world.tsv").exists()  # the prompt sets travel with the code
    assert not (image / "tests").exists() and not (image / "data" / "raw").exists()
    assert not list(image.rglob("__pycache__"))
