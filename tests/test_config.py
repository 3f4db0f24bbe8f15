import pytest

from photogenic.config import dump_config, load_config
from photogenic.errors import ConfigError, DataError
from photogenic.paths import under_root


def test_defaults_and_overrides_apply():
    config = load_config(None, ["ingest.workers=1", "ingest.sources.0.uri=raw/x-{0..3}.tar", "dvc.push=false"])
    assert config.ingest.workers == 1
    assert config.ingest.sources[0].uri == "raw/x-{0..3}.tar"
    assert config.dvc.push is False
    assert "workers: 1" in dump_config(config)


def test_yaml_file_is_loaded(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("ingest:\n  output: pool-v2\n  sources:\n    - {kind: folder, uri: raw/photos}\n")
    config = load_config(path)
    assert config.ingest.output == "pool-v2"
    assert config.ingest.sources[0].kind == "folder"


def test_unknown_key_names_the_path_and_the_allowed_keys(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("ingest:\n  wrokers: 3\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "ingest.wrokers" in str(err.value)
    assert "workers" in str(err.value)  # the allowed keys are listed


def test_unknown_section_is_an_error():
    with pytest.raises(ConfigError, match="unknown key 'trainer'.*allowed here: .*data.*dvc.*filter.*ingest"):
        load_config(None, ["trainer.lr=1"])


def test_bad_value_names_the_key_and_the_allowed_values():
    with pytest.raises(ConfigError) as err:
        load_config(None, ["ingest.sources.0.kind=zip"])
    message = str(err.value)
    assert "ingest.sources.0.kind" in message and "'webdataset', 'folder' or 'table'" in message


def test_out_of_range_value():
    with pytest.raises(ConfigError, match="ingest.gate.max_quarantine_share"):
        load_config(None, ["ingest.gate.max_quarantine_share=1.5"])


def test_dataset_name_must_not_be_a_path():
    with pytest.raises(ConfigError, match="ingest.output"):
        load_config(None, ["ingest.output=../elsewhere"])


def test_malformed_override_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="section.key=value"):
        load_config(None, ["novalue"])
    with pytest.raises(ConfigError, match="not an index"):
        load_config(None, ["ingest.sources.5.uri=x"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("ingest: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(tmp_path / "list.yaml")


def test_paths_that_escape_the_data_folder_are_refused():
    assert under_root("data", "raw/a.tar") == "data/raw/a.tar"
    assert under_root("data", "/abs/a.tar") == "/abs/a.tar"
    assert under_root("data", "s3://bucket/a.tar") == "s3://bucket/a.tar"
    for sneaky in ("../secrets", "raw/../../etc/passwd", ".."):
        with pytest.raises(DataError, match="leaves the data folder"):
            under_root("data", sneaky)


def test_shipped_configs_are_valid_and_params_yaml_matches_default():
    from pathlib import Path

    import yaml

    repo = Path(__file__).resolve().parents[1]
    for path in sorted((repo / "configs").glob("*.yaml")):
        load_config(path)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    assert params == load_config(repo / "configs" / "default.yaml").resolved(), (
        "params.yaml drifted from configs/default.yaml: run `photogenic run` or regenerate it"
    )
