"""Opening a stage's input dataset: the checks every derived stage makes before reading."""

from __future__ import annotations

from photogenic.dataset.store import Dataset
from photogenic.errors import ConfigError, DataError
from photogenic.paths import dataset_dir


def open_input(root: str, section: str, input_name: str, output_name: str, made_by: str) -> Dataset:
    """The dataset ``<section>.input`` names, refusing an output that would overwrite it and an
    input that does not exist yet (``made_by`` says which stage makes it)."""
    if input_name == output_name:
        raise ConfigError(f"{section}.input and {section}.output are both {input_name!r}; a stage never "
                          "rewrites its input: name the output another dataset.")
    source = Dataset(dataset_dir(root, input_name), name=input_name)
    if not source.exists():
        raise DataError(f"The dataset {input_name!r} ({section}.input) does not exist at {source.path}; "
                        f"run {made_by} first.")
    return source
