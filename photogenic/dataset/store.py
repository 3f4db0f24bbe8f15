"""A dataset on disk: a folder with the manifest, the quarantine table, shards and a card.

    <folder>/manifest.parquet     one row per sample (see schema.py)
    <folder>/quarantine.parquet   rows that could not be used, with the reason
    <folder>/shards/shard-NNNNNN.tar
    <folder>/dataset.json         counts and the parameters of the stage that made it

A version (manifest, quarantine, card and any other tables of the stage) is written after every
shard it references is complete, and made visible all at once (``photogenic.dataset.commit``),
so a crash at any moment leaves the previous version or the new one, whole. Shards in the folder
that no manifest references (left by an interrupted run) are removed by
``discard_unreferenced_shards``.
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from photogenic.dataset.atomic import Staged, filesystem, remove_stale_temporaries
from photogenic.dataset.commit import VersionCommit, settle
from photogenic.dataset.ref import DatasetRef
from photogenic.dataset.schema import QUARANTINE_SCHEMA
from photogenic.dataset.shards import ShardWriter, list_shards, read_range
from photogenic.imaging.decode import decode_rgb
from photogenic.paths import is_url, join

MANIFEST = "manifest.parquet"
QUARANTINE = "quarantine.parquet"
SHARDS = "shards"
CARD = "dataset.json"


class Dataset:
    def __init__(self, path: str, name: str | None = None):
        self.path = path.rstrip("/")
        self.name = name or self.path.rsplit("/", 1)[-1]
        self.fs, self._root = filesystem(self.path)
        self._settled = False

    def _settle(self) -> None:
        """Before the first look: finish a commit that a crash interrupted (once per object)."""
        if not self._settled:
            settle(self.path)
            self._settled = True

    # -- locations ---------------------------------------------------------------------------
    @property
    def manifest_path(self) -> str:
        return join(self.path, MANIFEST)

    @property
    def quarantine_path(self) -> str:
        return join(self.path, QUARANTINE)

    @property
    def shards_dir(self) -> str:
        return join(self.path, SHARDS)

    def exists(self) -> bool:
        self._settle()
        return self.fs.exists(join(self._root, MANIFEST))

    # -- reading -------------------------------------------------------------------------------
    def read_manifest(self, columns: list[str] | None = None) -> pa.Table:
        self._settle()
        with self.fs.open(join(self._root, MANIFEST), "rb") as handle:
            return pq.read_table(handle, columns=columns)

    def manifest_schema(self) -> pa.Schema:
        self._settle()
        with self.fs.open(join(self._root, MANIFEST), "rb") as handle:
            return pq.read_schema(handle)

    def num_rows(self) -> int:
        self._settle()
        """The manifest's row count, from the Parquet footer alone."""
        with self.fs.open(join(self._root, MANIFEST), "rb") as handle:
            return pq.ParquetFile(handle).metadata.num_rows

    def iter_manifest(self, batch_size: int) -> Iterator[pa.RecordBatch]:
        """The manifest in record batches, streamed from the file (never loaded whole)."""
        self._settle()
        with self.fs.open(join(self._root, MANIFEST), "rb") as handle:
            yield from pq.ParquetFile(handle).iter_batches(batch_size=batch_size)

    def read_quarantine(self) -> pa.Table:
        self._settle()
        path = join(self._root, QUARANTINE)
        if not self.fs.exists(path):
            return QUARANTINE_SCHEMA.empty_table()
        with self.fs.open(path, "rb") as handle:
            return pq.read_table(handle)

    def read_card(self) -> dict[str, Any]:
        self._settle()
        path = join(self._root, CARD)
        if not self.fs.exists(path):
            return {}
        return json.loads(self.fs.cat_file(path))

    def shard_path(self, shard: str) -> str:
        """Where a manifest's ``shard`` value points: relative to this dataset's folder (a
        derived dataset points into its input's shards, ``../ingested/shards/...``), or absolute."""
        if is_url(shard) or posixpath.isabs(shard):
            return shard
        full = join(self.path, shard)
        return full if is_url(full) else posixpath.normpath(full)

    def image_bytes(self, row: dict[str, Any]) -> bytes:
        """The original bytes of one manifest row's image: one ranged read."""
        return read_range(self.shard_path(row["shard"]), int(row["offset"]), int(row["length"]))

    def load_image(self, row: dict[str, Any], max_pixels: int | None = None) -> Image.Image:
        """The row's image as RGB, orientation applied, decoded the same way ingest checked it."""
        return decode_rgb(self.image_bytes(row), max_pixels=max_pixels)

    # -- writing -------------------------------------------------------------------------------
    def write(self, manifest: pa.Table, quarantine: pa.Table, card: dict[str, Any], *,
              files: dict[str, bytes] | None = None, shards: list[Staged] | None = None) -> DatasetRef:
        """Make a new version visible at once: the tables, the card, ``files`` (name -> bytes,
        the stage's other tables) and, for a stage that rebuilds its image store
        (``rebuild_writer``), its staged ``shards``, which then replace every shard the folder
        had. The manifest comes last. Returns the new ref."""
        self._settle()
        manifest_bytes = parquet_bytes(manifest)
        commit = VersionCommit(self.path)
        try:
            commit.add(QUARANTINE, parquet_bytes(quarantine))
            commit.add(CARD, (json.dumps(card, indent=2, sort_keys=True) + "\n").encode("utf-8"))
            for name, data in (files or {}).items():
                commit.add(name, data)
            if shards is not None:
                commit.add_staged(shards)
                kept = {s.target.rsplit("/", 1)[-1] for s in shards}
                for name in list_shards(self.shards_dir):
                    if name not in kept:
                        commit.remove(f"{SHARDS}/{name}")
            commit.add(MANIFEST, manifest_bytes)
        except BaseException:
            commit.abort()
            raise
        commit.commit(last=MANIFEST)
        return DatasetRef(
            name=self.name,
            path=self.path,
            manifest=self.manifest_path,
            content_hash=hashlib.sha256(manifest_bytes).hexdigest(),
            rows=manifest.num_rows,
            quarantined=quarantine.num_rows,
        )

    def ref(self) -> DatasetRef:
        self._settle()
        data = self.fs.cat_file(join(self._root, MANIFEST))
        rows = pq.read_metadata(io.BytesIO(data)).num_rows
        return DatasetRef(
            name=self.name,
            path=self.path,
            manifest=self.manifest_path,
            content_hash=hashlib.sha256(data).hexdigest(),
            rows=rows,
            quarantined=self.read_quarantine().num_rows,
        )

    def discard_leftovers(self) -> list[str]:
        """Remove the temporaries an interrupted run left (a commit's staged files are no
        leftovers: an interrupted commit is finished first)."""
        self._settle()
        return remove_stale_temporaries(self.path)

    def discard_unreferenced_shards(self, referenced: set[str]) -> list[str]:
        """Remove temporaries and shards no manifest row points at (an interrupted run's)."""
        removed = self.discard_leftovers()
        for name in list_shards(self.shards_dir):
            if f"{SHARDS}/{name}" not in referenced:
                self.fs.rm(join(self._root, SHARDS, name))
                removed.append(name)
        return removed


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    # zstd keeps manifests small; statistics let readers prune by sample_id and scores
    pq.write_table(table, sink, compression="zstd", write_statistics=True)
    return sink.getvalue()


def repoint_shards(table: pa.Table, source: Dataset, target: Dataset, column: str = "shard") -> pa.Table:
    """A derived dataset's manifest keeps pointing at its input's images: shard paths are
    relative to the manifest's folder, so point them from ``target``'s folder at ``source``'s
    shards (or keep them absolute when the data lives at a URL)."""
    def repoint(shard: str | None) -> str | None:
        if shard is None:
            return None
        full = source.shard_path(shard)
        return full if is_url(full) or posixpath.isabs(shard) else posixpath.relpath(full, target.path)

    shards = [repoint(s) for s in table[column].to_pylist()]
    return table.set_column(table.schema.get_field_index(column), column, pa.array(shards, pa.string()))


def rebuild_writer(dataset: Dataset, *, max_images: int, max_bytes: int) -> ShardWriter:
    """The shard writer of a stage that makes ``dataset``'s image store anew on every run
    (upsample, package): what an interrupted run left goes first; the new shards are staged,
    and the previous version keeps its shards, in place and in use, until ``Dataset.write``
    commits the new ones with the new manifest (``shards=writer.staged``)."""
    dataset.discard_leftovers()
    return ShardWriter(dataset.shards_dir, first_index=0, max_images=max_images, max_bytes=max_bytes, staged=True)
