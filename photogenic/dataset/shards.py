"""The image store: append-only tar shards in WebDataset layout, one member per image.

Each image is stored once, as its original bytes, under ``{sample_id}.{ext}``; the manifest
records the shard and the byte range of the member's data, so reading one image is one ranged
read (``fs.cat_file(path, start, end)``), locally or on an object store. Shards are written to
a temporary name and renamed when closed, and never opened for writing again.

Tar headers are written deterministically (mtime 0, uid/gid 0, no user names) so that the same
images in the same order give byte-identical shards, which keeps DVC's md5s reproducible.
"""

from __future__ import annotations

import io
import re
import tarfile
from dataclasses import dataclass

from photogenic.dataset.atomic import TMP_MARK, filesystem
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
    """Writes images into new shards under ``folder``, rolling over at a count or byte size."""

    def __init__(self, folder: str, *, first_index: int, max_images: int, max_bytes: int):
        self.folder = folder
        self.fs, self._root = filesystem(folder)
        self.fs.makedirs(self._root, exist_ok=True)
        self.max_images = max_images
        self.max_bytes = max_bytes
        self._index = first_index
        self._tar: tarfile.TarFile | None = None
        self._handle = None
        self._tmp = ""
        self._count = 0
        self.closed_shards: list[str] = []

    def add(self, sample_id: str, ext: str, data: bytes) -> StoredImage:
        if self._tar is not None and (
            self._count >= self.max_images or self._tar.offset + len(data) > self.max_bytes
        ):
            self.close_shard()
        if self._tar is None:
            self._open_shard()
        assert self._tar is not None
        info = tarfile.TarInfo(name=f"{sample_id}.{ext}")
        info.size = len(data)
        info.mtime = 0
        info.mode = 0o644
        header = info.tobuf(self._tar.format, self._tar.encoding, self._tar.errors)
        offset = self._tar.offset + len(header)
        self._tar.addfile(info, io.BytesIO(data))
        self._count += 1
        return StoredImage(shard=shard_name(self._index), offset=offset, length=len(data))

    @property
    def pending(self) -> bool:
        return self._tar is not None

    def close_shard(self) -> None:
        """Finish the open shard and give it its final name."""
        if self._tar is None:
            return
        self._tar.close()
        self._handle.close()
        final = join(self._root, shard_name(self._index))
        self.fs.mv(self._tmp, final)
        self.closed_shards.append(shard_name(self._index))
        self._tar = self._handle = None
        self._index += 1
        self._count = 0

    def abort(self) -> None:
        """Drop the open shard (its images were never recorded in a manifest)."""
        if self._tar is None:
            return
        self._handle.close()
        self.fs.rm(self._tmp)
        self._tar = self._handle = None

    def _open_shard(self) -> None:
        self._tmp = join(self._root, f"{shard_name(self._index)}{TMP_MARK}writing")
        self._handle = self.fs.open(self._tmp, "wb")
        self._tar = tarfile.open(fileobj=self._handle, mode="w", format=tarfile.USTAR_FORMAT)


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
