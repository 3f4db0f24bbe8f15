"""The optional ZenML step that fits the auto-filter's thresholds (steps/filter_calibration.py)
is in the data pipelines only when ``filter.calibrate.enabled`` asks for it, after ingest."""

from __future__ import annotations

import pytest

from photogenic.config import load_config


@pytest.mark.parametrize("enabled", [False, True])
def test_the_calibration_step_runs_only_when_enabled(tmp_path, enabled):
    from pipelines.data_curation import data_curation

    config = load_config(None, [f"data.root={tmp_path}", f"filter.calibrate.enabled={str(enabled).lower()}"]).resolved()
    data_curation.prepare(config=config, progress=False)
    steps = {invocation.step.name: invocation for invocation in data_curation.invocations.values()}
    assert ("filter_calibration" in steps) is enabled
    if enabled:
        invocation = steps["filter_calibration"]
        # it reads the versioned ingested dataset and takes the filter stage's config sections
        assert set(invocation.parameters["config"]) == {"data", "dvc", "filter"}
        assert [a.invocation_id for a in invocation.input_artifacts.values()] == ["version_ingest"]
