"""The image store: append-only tar shards in WebDataset layout, one member per image.

Each image is stored once, as its original bytes, under ``{sample_id}.{ext}``; the manifest
records the shard and the byte range of the member's data, so reading one image is one ranged
read (``fs.cat_file(path, start, end)``), locally or on an object store. Shards are written to
a temporary name and renamed when closed, and never opened for writing again.

Tar headers are written deterministically (mtime 0, uid/gid 0, no user names) so that the same
images in the same order give byte-identical shards, which keeps DVC's md5s reproducible.
"""

from __future__ import annotations

import contextlib
import re
import tarfile
from dataclasses import dataclass

from photogenic.dataset.atomic import Staged, filesystem, no_space, rename, staged_open
from photogenic.errors import NO_SPACE
from photogenic.paths import join

SHARD_PATTERN = re.compile(r"^shard-(\d{6})\.tar$")


def shard_name(index: int) -> str:
    return f"shard-{index:06d}.tar"


@dataclass(frozen=True)
class StoredImage:
    shard: str  # shard file name, relative to the store folder
    offset: int  # byte offset of the member's data in the shard
    length: int


class ShardWriter:
    """Writes images into new shards under ``folder``, rolling over at a count or byte size.

    Members are written as plain USTAR blocks (header, data, padding to 512 bytes, and the
    end-of-archive blocks that tarfile writes), so the data offset of every member is known
    without a second pass and the result is a standard tar that tarfile and WebDataset read.
    """

    def __init__(self, folder: str, *, first_index: int, max_images: int, max_bytes: int, staged: bool = False):
        """``staged``: closed shards stay under temporary names (in ``self.staged``) for a
        ``Dataset.write`` to make visible with the manifest: what a stage that rebuilds its
        shards under the names of the previous version's needs, to keep that version whole until
        the new one is committed."""
        self.folder = folder
        self.staging = staged
        self.staged: list[Staged] = []
        self.fs, self._root = filesystem(folder)
        self.fs.makedirs(self._root, exist_ok=True)
        self.max_images = max_images
        self.max_bytes = max_bytes
        self._index = first_index
        self._handle = None
        self._stack = contextlib.ExitStack()
        self._count = 0
        self._offset = 0
        self.closed_shards: list[str] = []

    def add(self, sample_id: str, ext: str, data: bytes) -> StoredImage:
        return self.add_sample(sample_id, [(ext, data)])[0]

    def add_sample(self, key: str, members: list[tuple[str, bytes]]) -> list[StoredImage]:
        """Write one WebDataset sample: ``{key}.{ext}`` for each (ext, data), adjacent in one
        shard (a reader groups a sample's members by key, so a sample never spans two shards)."""
        size = sum(len(data) for _, data in members)
        if self._handle is not None and (self._count >= self.max_images or self._offset + size > self.max_bytes):
            self.close_shard()
        if self._handle is None:
            self._open_shard()
        stored = [self._write_member(f"{key}.{ext}", data) for ext, data in members]
        self._count += 1
        return stored

    def _write_member(self, name: str, data: bytes) -> StoredImage:
        info = tarfile.TarInfo(name=name)
        info.size = len(data)
        info.mtime = 0
        info.mode = 0o644
        header = info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape")
        offset = self._offset + len(header)
        padding = -len(data) % tarfile.BLOCKSIZE
        self._write(header, data, b"\0" * padding)
        self._offset = offset + len(data) + padding
        return StoredImage(shard=shard_name(self._index), offset=offset, length=len(data))

    def _write(self, *parts: bytes) -> None:
        try:
            for part in parts:
                self._handle.write(part)
        except OSError as exc:
            if exc.errno in NO_SPACE:
                raise no_space(join(self.folder, shard_name(self._index)), exc) from None
            raise

    def close_shard(self) -> None:
        """Finish the open shard (end-of-archive blocks) and give it its final name."""
        if self._handle is None:
            return
        end = self._offset + 2 * tarfile.BLOCKSIZE
        self._write(b"\0" * (end - self._offset + (-end % tarfile.RECORDSIZE)))
        self._stack.close()  # fsync; then the rename to the final name, now or at the commit
        if self.staging:
            self.staged.extend(self._done)
        else:
            rename(self._done[0])
        self.closed_shards.append(shard_name(self._index))
        self._handle = None
        self._index += 1
        self._count = 0
        self._offset = 0

    def abort(self) -> None:
        """Drop the open shard, and the staged ones (their images were never recorded in a manifest)."""
        for staged in self.staged:
            with contextlib.suppress(FileNotFoundError, OSError):
                self.fs.rm(filesystem(staged.tmp)[1])
        self.staged.clear()
        if self._handle is None:
            return
        aborted = RuntimeError("shard aborted")
        self._stack.__exit__(type(aborted), aborted, None)  # staged_open removes the temporary
        self._handle = None

    def _open_shard(self) -> None:
        self._stack = contextlib.ExitStack()
        self._handle, self._done = self._stack.enter_context(staged_open(join(self.folder, shard_name(self._index))))


def list_shards(folder: str) -> list[str]:
    """Names of the finished shards in ``folder``, in index order."""
    fs, root = filesystem(folder)
    if not fs.exists(root):
        return []
    names = [p.rsplit("/", 1)[-1] for p in fs.ls(root, detail=False)]
    return sorted(n for n in names if SHARD_PATTERN.match(n))


def next_shard_index(names: list[str]) -> int:
    indices = [int(SHARD_PATTERN.match(n).group(1)) for n in names if SHARD_PATTERN.match(n)]
    return max(indices, default=-1) + 1


def read_range(path: str, offset: int, length: int) -> bytes:
    """One ranged read of ``length`` bytes at ``offset``: how every stage reads an image."""
    fs, target = filesystem(path)
    data = fs.cat_file(target, start=offset, end=offset + length)
    if len(data) != length:
        raise OSError(f"{path}: expected {length} bytes at offset {offset}, got {len(data)}")
    return data
