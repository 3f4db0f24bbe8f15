"""The upsample and package ZenML steps, composed as the data_curation pipeline will compose them
after the caption stage (gate and version after each), make the same datasets, byte for byte by
DVC md5, as `dvc repro package`."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from zenml import pipeline, step

from photogenic.config import load_config
from photogenic.dataset.ref import DatasetRef
from photogenic.dataset.store import Dataset
from photogenic.versioning.dvc import read_lock, write_params
from steps.cache import stage_config
from steps.package import package
from steps.quality_gate import quality_gate
from steps.upsample import upsample
from steps.version_dataset import version_dataset
from tests.conftest import make_captioned


@step(enable_cache=False)
def captioned_ref(path: str) -> DatasetRef:
    """Stands in for the caption stage's versioned output."""
    return Dataset(path, name="captioned").ref()


@pipeline(enable_cache=False)
def upsample_and_package(config: dict, captioned_path: str) -> None:
    # each step takes its stage's config sections only, as pipelines/data_curation.py gives them
    captioned = captioned_ref(captioned_path)
    upsample_config, package_config = stage_config("upsample", config), stage_config("package", config)
    upsampled = upsample(captioned, config=upsample_config, progress=False)
    gated = quality_gate(upsampled, config=upsample_config, stage="upsample", id="gate_upsample")
    versioned = version_dataset(gated, config=upsample_config, stage="upsample", id="version_upsample")
    training_set, _ = package(versioned, config=package_config, progress=False)
    gated_set = quality_gate(training_set, config=package_config, stage="package", id="gate_package")
    version_dataset(gated_set, config=package_config, stage="package", id="version_package")


@pytest.mark.slow
def test_zenml_steps_and_dvc_repro_make_the_same_upsampled_and_training_sets(dvc_project, monkeypatch):
    from photogenic.runtime import prepare_environment

    monkeypatch.chdir(dvc_project)
    make_captioned(dvc_project / "data")
    config = load_config(dvc_project / "configs" / "default.yaml",
                         ["package.validation_share=0.4", "upsample.workers=0", "package.workers=0"])
    write_params(dvc_project, config.resolved())
    # the two stages alone (--single-item): the stand-in captioned set is their input, and dvc.yaml's
    # caption stage upstream would otherwise remake it from the sample pool
    for stage in ("upsample", "package"):
        done = subprocess.run([sys.executable, "-m", "dvc", "repro", "--single-item", stage], cwd=dvc_project,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr + done.stdout
    by_dvc = {name: read_lock(dvc_project)["stages"][name]["outs"][0]["md5"] for name in ("upsample", "package")}

    shutil.rmtree(dvc_project / "data/datasets/upsampled")
    shutil.rmtree(dvc_project / "data/datasets/training_set")
    (dvc_project / "dvc.lock").unlink()
    prepare_environment(dvc_project)
    from zenml.client import Client

    Client.initialize(root=dvc_project)
    upsample_and_package(config=config.resolved(), captioned_path=str(dvc_project / "data/datasets/captioned"))
    run = Client().get_pipeline("upsample_and_package").last_run
    assert run.status.value == "completed"
    assert run.steps["gate_package"].run_metadata["quality_gate"]["success"] is True
    assert run.steps["upsample"].run_metadata["upsampled"] == 3
    card = run.steps["package"].outputs["dataset_card"][0].load()
    by_zenml = {name: read_lock(dvc_project)["stages"][name]["outs"][0]["md5"] for name in ("upsample", "package")}
    assert by_zenml == by_dvc
    assert f"| upsampled | upsample | 8 | {by_dvc['upsample']} |" in card
