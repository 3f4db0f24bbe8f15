"""ZenML step: a dataset that an earlier run made, as the artifact a pipeline starts from.

The training pipeline run on its own trains on the datasets the data curation pipeline left
(``training.pretrain.input``, ``training.quality_tune.input``). The pipeline passes the dataset's
content hash as a parameter, so this step, and the training it feeds, is cached until the
dataset changes.
"""

from __future__ import annotations

from typing import Annotated

from zenml import step

from photogenic.config import config_from_dict
from photogenic.dataset.ref import DatasetRef
from photogenic.training.recipes.common import dvc_md5_of, open_dataset


@step(enable_cache=True)
def existing_dataset(config: dict, name: str, key: str, content_hash: str) -> Annotated[DatasetRef, "dataset"]:
    """``key``: the config key naming the dataset (for the error when there is none)."""
    root = config_from_dict(config).data.root
    dataset = open_dataset(root, name, key)
    return dataset.ref().with_dvc_md5(dvc_md5_of(dataset, root))
