"""Opening a stage's input dataset: the checks every derived stage makes before reading."""

from __future__ import annotations

from photogenic.dataset.ref import DatasetRef
from photogenic.dataset.store import Dataset
from photogenic.errors import ConfigError, DataError
from photogenic.paths import dataset_dir


def open_input(root: str, section: str, input_name: str, output_name: str, made_by: str,
               ref: DatasetRef | None = None) -> Dataset:
    """The dataset ``<section>.input`` names, refusing an output that would overwrite it and an
    input that does not exist yet (``made_by`` says which stage makes it). ``ref``: the dataset a
    runner hands the stage (a ZenML step's input artifact, a KFP task's pulled dataset), read
    where it lies; without one the stage reads the dataset the config names (``photogenic step``)."""
    if input_name == output_name:
        raise ConfigError(f"{section}.input and {section}.output are both {input_name!r}; a stage never "
                          "rewrites its input: name the output another dataset.")
    if ref is not None and ref.name != input_name:
        raise ConfigError(f"The stage was handed dataset {ref.name!r} but {section}.input is {input_name!r}.")
    source = Dataset(ref.path if ref is not None else dataset_dir(root, input_name), name=input_name)
    if not source.exists():
        raise DataError(f"The dataset {input_name!r} ({section}.input) does not exist at {source.path}; "
                        f"run {made_by} first.")
    return source
