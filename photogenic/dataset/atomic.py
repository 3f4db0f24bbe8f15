"""Atomic writes through fsspec: write to a temporary name beside the target, then rename.

A reader therefore sees either the previous file or the complete new one, never half a shard
or half a manifest. On object stores the final upload is itself atomic.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from typing import IO

import fsspec
from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem

TMP_MARK = ".tmp-"


def filesystem(path: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec filesystem for ``path`` and the path as that filesystem spells it."""
    return url_to_fs(path)


@contextlib.contextmanager
def atomic_open(path: str, mode: str = "wb") -> Iterator[IO]:
    """Open ``path`` for writing; the file appears under its name only if the block succeeds.

    Local files are flushed to disk (fsync) before the rename, so a power cut cannot leave a
    renamed but empty file; object stores make the final upload atomic themselves.
    """
    fs, target = filesystem(path)
    parent = target.rsplit("/", 1)[0] if "/" in target else "."
    fs.makedirs(parent, exist_ok=True)
    tmp = f"{target}{TMP_MARK}{uuid.uuid4().hex[:12]}"
    local = isinstance(fs, LocalFileSystem)
    try:
        with (open(tmp, mode) if local else fs.open(tmp, mode)) as handle:
            yield handle
            if local:
                handle.flush()
                os.fsync(handle.fileno())
        if local:
            os.replace(tmp, target)
        else:
            fs.mv(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError, OSError):
            fs.rm(tmp)
        raise


def write_bytes(path: str, data: bytes) -> None:
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def write_text(path: str, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def read_text(path: str) -> str:
    fs, target = filesystem(path)
    return fs.cat_file(target).decode("utf-8")


def remove_stale_temporaries(folder: str) -> list[str]:
    """Delete temporary files an interrupted writer left in ``folder`` (never referenced)."""
    fs, root = filesystem(folder)
    if not fs.exists(root):
        return []
    stale = [p for p in fs.find(root) if TMP_MARK in p.rsplit("/", 1)[-1]]
    for path in stale:
        fs.rm(path)
    return stale
