"""ZenML step, optional (``filter.calibrate.enabled``): the auto-filter's thresholds fitted from
the stage-1 verdicts in ``filter.calibrate.labels``, on the versioned ingested dataset. Its
outputs are the fitted config fragment and the numbers; a later run passes the fragment with
``--config`` (photogenic.filtering.calibrate). The data pipeline has no experiment tracker:
calibrate logs to an MLflow run of its own (``filter.calibrate.mlflow``)."""

from __future__ import annotations

from typing import Annotated

from zenml import log_metadata, step

from photogenic.config import config_from_dict
from photogenic.dataset.atomic import read_text
from photogenic.dataset.ref import DatasetRef
from photogenic.filtering.calibrate import calibrate
from photogenic.versioning.restore import ensure_dataset


@step(enable_cache=False)  # people add labels between runs, outside any artifact ZenML could key on
def filter_calibration(dataset: DatasetRef, config: dict, progress: bool = True
                       ) -> tuple[Annotated[str, "fitted_filter_config"], Annotated[dict, "calibration"]]:
    ensure_dataset(dataset)
    result = calibrate(config_from_dict(config), progress=progress)
    numbers = {"labels": result.labels, "held_out": result.held_out, "recall": result.recall,
               "precision": result.precision, "configured_recall": result.configured_recall,
               "configured_precision": result.configured_precision, "thresholds": result.overrides()}
    log_metadata(metadata={**numbers, "input_dvc_md5": dataset.dvc_md5, "files": result.files})
    return read_text(result.files["fragment"]), numbers
