"""Shards as the unit of output and of resume: one Parquet part per input shard.

A stage writes the part of a shard (atomically) once every row of that shard is done, in a
folder under its output. A run killed at any point and started again with the same inputs and
parameters (its ``fingerprint``) finds the parts already written and processes only the other
shards; parts left by different inputs or parameters are discarded first. Part names are a
hash of the shard's name, never the name itself: shard names come from data.
"""

from __future__ import annotations

import hashlib
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq

from photogenic.dataset.atomic import filesystem, remove_stale_temporaries, write_bytes, write_text
from photogenic.dataset.store import parquet_bytes
from photogenic.paths import join

RUN = "run.json"
#: where a stage keeps the parts of a run in progress, under its output dataset's folder
PARTS = "parts"


class ShardParts:
    def __init__(self, folder: str, fingerprint: str):
        self.folder = folder.rstrip("/")
        self.fingerprint = fingerprint
        self.fs, self._root = filesystem(self.folder)
        self.reused = 0
        run = join(self._root, RUN)
        if self.fs.exists(run) and json.loads(self.fs.cat_file(run)).get("fingerprint") != fingerprint:
            self.fs.rm(self._root, recursive=True)  # another input or other parameters: start over
        if not self.fs.exists(run):
            write_text(join(self.folder, RUN), json.dumps({"fingerprint": fingerprint}) + "\n")
        remove_stale_temporaries(self.folder)

    @staticmethod
    def file_name(key: str) -> str:
        return f"part-{hashlib.sha256(key.encode('utf-8')).hexdigest()[:32]}.parquet"

    def done(self, key: str) -> bool:
        return self.fs.exists(join(self._root, self.file_name(key)))

    def pending(self, keys: list[str]) -> list[str]:
        """``keys`` without a finished part (counting the others as reused)."""
        todo = [key for key in keys if not self.done(key)]
        self.reused = len(keys) - len(todo)
        return todo

    def write(self, key: str, table: pa.Table) -> None:
        write_bytes(join(self.folder, self.file_name(key)), parquet_bytes(table))

    def read(self, key: str) -> pa.Table:
        return pq.read_table(io.BytesIO(self.fs.cat_file(join(self._root, self.file_name(key)))))


def discard_parts(folder: str) -> None:
    """Once the stage's output is written its parts are spent (and must not change its md5)."""
    fs, root = filesystem(folder)
    if fs.exists(root):
        fs.rm(root, recursive=True)


def fingerprint(*parts: object) -> str:
    """A stable hash of the inputs and parameters a set of parts was made from."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
