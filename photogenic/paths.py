"""Where things live: every relative path in a config is resolved under the data folder.

A relative path that climbs out of the data folder (``../../etc``) is an error, so that a config
can never make a stage read or write somewhere unexpected. Absolute paths and URLs (``s3://``)
are the user's explicit choice and are taken as given.
"""

from __future__ import annotations

import posixpath
from pathlib import PurePosixPath

from photogenic.errors import DataError


def is_url(path: str) -> bool:
    return "://" in path


def join(base: str, *parts: str) -> str:
    """Join fsspec paths with '/' whatever the OS."""
    return posixpath.join(base, *parts)


def under_root(root: str, path: str, what: str = "path") -> str:
    """Resolve ``path`` against the data root, refusing relative paths that escape it."""
    if is_url(path) or PurePosixPath(path).is_absolute():
        return path
    normal = posixpath.normpath(path)
    if normal == ".." or normal.startswith("../"):
        raise DataError(
            f"The {what} {path!r} leaves the data folder {root!r}. Use a path inside it, or an "
            "absolute path or URL if you mean a location outside."
        )
    return posixpath.normpath(join(root, normal))


def datasets_dir(root: str) -> str:
    return join(root, "datasets")


def dataset_dir(root: str, name: str) -> str:
    return join(datasets_dir(root), name)


def models_dir(root: str) -> str:
    return join(root, "models")


def model_dir(root: str, name: str) -> str:
    """Where a training stage saves the model it names (``training.*.output``)."""
    return join(models_dir(root), name)


def relative_to(path: str, start: str) -> str:
    """``path`` relative to ``start`` when both are local paths, else ``path`` unchanged."""
    if is_url(path) or is_url(start):
        return path
    return posixpath.relpath(posixpath.abspath(path), posixpath.abspath(start))
