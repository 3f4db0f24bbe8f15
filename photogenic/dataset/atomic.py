"""Atomic writes through fsspec: write to a temporary name beside the target, then rename.

A reader therefore sees either the previous file or the complete new one, never half a shard
or half a manifest. On object stores the final upload is itself atomic. Several files that must
change together (a dataset version) are staged here and renamed by ``photogenic.dataset.commit``.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

import fsspec
from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem

from photogenic.errors import NO_SPACE, StorageError

TMP_MARK = ".tmp-"


def filesystem(path: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec filesystem for ``path`` and the path as that filesystem spells it."""
    return url_to_fs(path)


@dataclass(frozen=True)
class Staged:
    """A finished temporary file (written in full, flushed to disk) and the name it will get,
    both as given (a local path or a URL with its protocol, so the file system can be found again)."""

    tmp: str
    target: str


@contextlib.contextmanager
def staged_open(path: str, mode: str = "wb") -> Iterator[tuple[IO, list[Staged]]]:
    """Open a temporary file beside ``path`` for writing; when the block succeeds, the list it
    yields holds the ``Staged`` file, complete and on disk but not yet under its name (a
    ``VersionCommit`` renames several together). When the block fails, the temporary is removed.
    A disk that fills up raises StorageError naming the file."""
    fs, target = filesystem(path)
    parent = target.rsplit("/", 1)[0] if "/" in target else "."
    fs.makedirs(parent, exist_ok=True)
    suffix = f"{TMP_MARK}{uuid.uuid4().hex[:12]}"
    tmp = f"{target}{suffix}"
    local = isinstance(fs, LocalFileSystem)
    done: list[Staged] = []
    try:
        with (open(tmp, mode) if local else fs.open(tmp, mode)) as handle:
            yield handle, done
            if local:
                handle.flush()
                os.fsync(handle.fileno())
        done.append(Staged(f"{path}{suffix}", path))
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError, OSError):
            fs.rm(tmp)
        if isinstance(exc, OSError) and exc.errno in NO_SPACE:
            raise no_space(path, exc) from None
        raise


def no_space(path: str, exc: OSError) -> StorageError:
    """The error for a write to ``path`` that failed for want of space (``exc.errno`` in NO_SPACE)."""
    return StorageError(f"No space left to write {path} ({os.strerror(exc.errno)}). Nothing was replaced: the "
                        "version written before is intact. Free space (or raise the quota) and run again.")


@contextlib.contextmanager
def atomic_open(path: str, mode: str = "wb") -> Iterator[IO]:
    """Open ``path`` for writing; the file appears under its name only if the block succeeds.

    Local files are flushed to disk (fsync) before the rename, so a power cut cannot leave a
    renamed but empty file; object stores make the final upload atomic themselves.
    """
    with staged_open(path, mode) as (handle, done):
        yield handle
    rename(done[0])


def rename(staged: Staged) -> None:
    """Give a staged file its name (atomically replacing what had it)."""
    fs, target = filesystem(staged.target)
    _, tmp = filesystem(staged.tmp)
    try:
        if isinstance(fs, LocalFileSystem):
            os.replace(tmp, target)
        else:
            fs.mv(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError, OSError):
            fs.rm(tmp)
        raise


def stage_bytes(path: str, data: bytes) -> Staged:
    with staged_open(path) as (handle, done):
        handle.write(data)
    return done[0]


def fsync_folder(path: str) -> None:
    """Make the renames in a local folder durable (its entries are flushed to disk)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
