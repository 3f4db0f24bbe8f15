"""Writing the pool in img2dataset's ``output_format=webdataset`` layout, byte-reproducibly.

Per shard: ``{shard:05d}.tar`` (``{key}.jpg``, ``{key}.txt``, ``{key}.json`` per sample, in key
order), ``{shard:05d}.parquet`` (one metadata row per sample) and ``{shard:05d}_stats.json``.
Nothing written depends on the clock, the user or the file system: tar headers are zeroed,
Parquet carries no pandas metadata, stats times are 0, so the same pool has the same DVC md5
everywhere. Every file appears atomically (temporary name in the same folder, then rename).
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from photogenic.dataset.atomic import write_bytes
from photogenic.samplepool.sample import SampleRecord

GROUND_TRUTH = "ground_truth.parquet"
README = "README.md"
STAMP = "_generator.json"

SHARD_SCHEMA = pa.schema([
    ("url", pa.string()),
    ("caption", pa.string()),
    ("likes", pa.int64()),
    ("views", pa.int64()),
    ("category", pa.string()),
    ("key", pa.string()),
    ("status", pa.string()),
    ("error_message", pa.string()),
    ("width", pa.int64()),
    ("height", pa.int64()),
    ("original_width", pa.int64()),
    ("original_height", pa.int64()),
    ("exif", pa.string()),
    ("sha256", pa.string()),
])

GROUND_TRUTH_SCHEMA = pa.schema([
    ("key", pa.string()),
    ("shard", pa.int32()),
    ("sample_index", pa.int64()),
    ("subject_kind", pa.string()),
    ("concept", pa.string()),
    ("subject_colour", pa.string()),
    ("background", pa.string()),
    ("lighting", pa.string()),
    ("placement", pa.string()),
    ("weaknesses", pa.list_(pa.string())),
    ("defects", pa.list_(pa.string())),
    ("photogenic", pa.bool_()),
    ("scene_caption", pa.string()),
    ("near_duplicate_of", pa.string()),
    ("width", pa.int32()),
    ("height", pa.int32()),
    ("is_upsample_candidate", pa.bool_()),
    ("subject_box", pa.list_(pa.int32())),
    ("overlay_text", pa.string()),
])


def shard_name(shard: int) -> str:
    return f"{shard:05d}"


def write_shard(out: Path, shard: int, records: Sequence[SampleRecord]) -> Path:
    """Write one shard's tar, Parquet and stats; returns the tar's path."""
    name = shard_name(shard)
    tar_path = out / f"{name}.tar"
    atomic_write(tar_path, _tar_bytes(records))
    atomic_write(out / f"{name}.parquet", parquet_bytes([r.meta for r in records], SHARD_SCHEMA))
    atomic_write(out / f"{name}_stats.json", _stats_bytes(len(records)))
    return tar_path


def write_ground_truth(out: Path, rows: Sequence[dict[str, Any]]) -> None:
    atomic_write(out / GROUND_TRUTH, parquet_bytes(rows, GROUND_TRUTH_SCHEMA))


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``path`` atomically (temporary name beside it, fsync, rename)."""
    write_bytes(str(path), data)


def parquet_bytes(rows: Sequence[dict[str, Any]], schema: pa.Schema) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist(list(rows), schema=schema), sink)
    return sink.getvalue().to_pybytes()


def _tar_bytes(records: Sequence[SampleRecord]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for record in sorted(records, key=lambda r: r.key):
            _add_member(tar, f"{record.key}.jpg", record.image)
            _add_member(tar, f"{record.key}.txt", record.caption)
            _add_member(tar, f"{record.key}.json", json.dumps(record.meta, indent=4).encode("utf-8"))
    return buffer.getvalue()


def _add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


def _stats_bytes(count: int) -> bytes:
    """img2dataset's shard stats; times are fixed at 0 so that the file is reproducible."""
    stats = {
        "count": count,
        "successes": count,
        "failed_to_download": 0,
        "failed_to_resize": 0,
        "duration": 0.0,
        "start_time": 0.0,
        "end_time": 0.0,
        "status_dict": {"success": count},
    }
    return json.dumps(stats, indent=4).encode("utf-8")
