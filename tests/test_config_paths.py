"""Config values that reach a shell or the file system are checked where they are read: no
shell syntax in the paths dvc.yaml pastes into commands, no paths as annotator names, no stage
writing another stage's dataset."""

from __future__ import annotations

import subprocess
import sys

import pytest

from photogenic.config import load_config
from photogenic.dataset.store import Dataset
from photogenic.errors import ConfigError
from photogenic.stages.ingest import ingest
from photogenic.stages.runner import run_stage
from tests.conftest import config_for, image_bytes, wds_members, write_tar


@pytest.mark.parametrize("override", [
    "sample_pool.out=x; touch pwned", "sample_pool.out=$(touch pwned)", "sample_pool.out=`id`",
    "sample_pool.out=../outside", "sample_pool.out=/abs/pool", "data.root=data && rm -rf ~", "data.root=da ta",
    "data.root=data|tee x",
])
def test_paths_pasted_into_dvc_commands_cannot_carry_shell_syntax(override):
    key = override.split("=", 1)[0]
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(None, [override])


def test_a_shell_payload_never_runs_through_dvc_yaml(tmp_path):
    # params.yaml, which dvc.yaml's commands are built from, is written from a loaded config: the value
    # is refused where a config is loaded, before any shell
    (tmp_path / "run.yaml").write_text("sample_pool:\n  out: 'x; touch pwned'\n")
    done = subprocess.run([sys.executable, "-m", "photogenic.cli", "config", "--config", "run.yaml"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 2 and "sample_pool.out" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("name", ["../../../escape", "a/b", "..", ".hidden", "a b"])
def test_annotator_names_cannot_be_paths(name):
    with pytest.raises(ConfigError, match=r"curation\.stage1\.annotators\.0"):
        load_config(None, [f"curation.stage1.annotators=['{name}']"])


def test_the_curation_folder_stays_under_the_data_root():
    with pytest.raises(ConfigError, match=r"curation\.dir"):
        load_config(None, ["curation.dir=../../elsewhere"])


def test_good_paths_still_load():
    config = load_config(None, ["data.root=/srv/data-1/photos", "sample_pool.out=raw/pool_v2",
                                "curation.stage1.annotators=[ann.a, ann-b, ann_c]", "data.root=s3://bucket/prefix"])
    assert config.data.root == "s3://bucket/prefix"


def test_a_stage_cannot_write_another_stages_dataset(tmp_path):
    root = tmp_path / "data"
    write_tar(root / "raw" / "00000.tar", wds_members("a", image_bytes(seed=1), "a photo"))
    ingest(config_for(root, "ingest.sources.0.uri=raw/*.tar"), progress=False)
    ingested = Dataset(str(root / "datasets" / "ingested"))
    before = sorted(p.name for p in (root / "datasets" / "ingested" / "shards").iterdir())
    config = config_for(root, "package.output=ingested", "package.input=ingested")
    with pytest.raises(ConfigError, match=r"package\.output is 'ingested', the dataset ingest\.output names"):
        run_stage("package", config, progress=False)
    assert sorted(p.name for p in (root / "datasets" / "ingested" / "shards").iterdir()) == before
    assert ingested.read_manifest().num_rows == 1
