"""People's exports from where they land (curation.exports): copied into the stages' folders,
declared as the stage's inputs (fingerprinted by their md5s), never replacing other labels unseen,
and only under plain names."""

import pytest

from photogenic.curation.incoming import fetch_exports, landed_exports
from photogenic.errors import DataError
from photogenic.stages.curation import SPEC
from photogenic.versioning.fingerprint import external_md5s
from tests.conftest import config_for


def test_landed_exports_are_copied_declared_and_kept(tmp_path):
    landing = tmp_path / "bucket" / "exports"
    (landing / "stage1").mkdir(parents=True)
    (landing / "stage1" / "ana.json").write_text("[]")
    (landing / "stage2").mkdir()
    config = config_for(tmp_path / "data", f"curation.exports={landing}", "curation.simulate.enabled=false")
    assert landed_exports(config, 1) == [f"{landing}/stage1/ana.json"] and landed_exports(config, 2) == []
    assert external_md5s(SPEC, config)["stage1/ana.json"]  # the check task fingerprints it
    copied = fetch_exports(config)
    target = tmp_path / "data" / "curation" / "stage1" / "annotations" / "ana.json"
    assert copied == [str(target)] and target.read_text() == "[]"
    assert fetch_exports(config) == []  # the same bytes again: nothing to do
    (landing / "stage1" / "ana.json").write_text('[{"id": 1}]')
    with pytest.raises(DataError, match="already holds another export"):
        fetch_exports(config)


def test_a_landed_file_with_a_strange_name_is_refused(tmp_path):
    landing = tmp_path / "exports" / "stage1"
    landing.mkdir(parents=True)
    (landing / "..evil;rm.json").write_text("[]")
    with pytest.raises(DataError, match="not a plain file name"):
        landed_exports(config_for(tmp_path / "data", f"curation.exports={tmp_path / 'exports'}"), 1)
