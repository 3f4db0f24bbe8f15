"""Column names and Arrow types of the manifest and quarantine tables.

One place defines them so that every stage, the quality suites and the tests agree. A later
stage adds its own columns to the manifest (documented in that stage's module); it never
rewrites the ones below.
"""

from __future__ import annotations

import pyarrow as pa

#: Columns the ingest stage writes, one row per distinct image (sha256 of its original bytes).
MANIFEST_COLUMNS: dict[str, pa.DataType] = {
    # identity: sha256 hex digest of the original image bytes, exactly as stored in the shard
    "sample_id": pa.string(),
    # where the image lives: a tar shard path relative to the manifest's folder, and the byte
    # range of the member's data inside it, so one image is one ranged read
    "shard": pa.string(),
    "offset": pa.int64(),
    "length": pa.int64(),
    # what the decoder found (width/height after EXIF orientation is applied)
    "format": pa.string(),
    "width": pa.int32(),
    "height": pa.int32(),
    "mode": pa.string(),
    "orientation": pa.int16(),
    # where it came from: the first occurrence, and every occurrence (exact duplicates collapse)
    "source_kind": pa.string(),
    "source": pa.string(),
    "sources": pa.list_(pa.string()),
    "url": pa.string(),
    # the source's caption, cleaned; caption_status says why it is null when it is
    "caption": pa.string(),
    "caption_source": pa.string(),
    "caption_status": pa.string(),
    # the source caption bytes whenever cleaning lost something (null when status is ok)
    "caption_raw": pa.binary(),
    # the source's own metadata as JSON (img2dataset's .json, a table row's extra columns)
    "source_meta": pa.string(),
}

#: Prefix of the flattened numeric source-metadata columns (likes, views, original_width...),
#: which later stages may threshold on.
META_PREFIX = "meta_"

#: caption_status values
CAPTION_OK = "ok"
CAPTION_MISSING = "missing"
CAPTION_EMPTY = "empty"
CAPTION_NOT_UTF8 = "not_utf8"
CAPTION_BINARY = "binary"
#: longer than the configured bound: cut at a word boundary, original bytes kept in caption_raw
CAPTION_TRUNCATED = "truncated"
#: larger than a caption can be (photogenic.sources.readers.ReadLimits): never read, nothing kept
CAPTION_TOO_LARGE = "too_large"
CAPTION_STATUSES = (CAPTION_OK, CAPTION_TRUNCATED, CAPTION_MISSING, CAPTION_EMPTY, CAPTION_NOT_UTF8, CAPTION_BINARY,
                    CAPTION_TOO_LARGE)
#: statuses whose caption is usable text (the column is non-null exactly for these)
CAPTION_USABLE = (CAPTION_OK, CAPTION_TRUNCATED)

#: Image formats the decoder accepts (Pillow format names).
KNOWN_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "MPO")

#: The quarantine table: samples that could not be used, with why. Never silently dropped.
QUARANTINE_COLUMNS: dict[str, pa.DataType] = {
    "source_kind": pa.string(),
    "source": pa.string(),
    # sha256 of the bytes when there were any bytes at all
    "sample_id": pa.string(),
    "length": pa.int64(),
    "stage": pa.string(),
    "reason_code": pa.string(),
    "reason": pa.string(),
}


def manifest_schema(extra: dict[str, pa.DataType] | None = None) -> pa.Schema:
    """The ingest manifest schema, plus any extra columns (e.g. flattened source metadata)."""
    fields = dict(MANIFEST_COLUMNS)
    fields.update(extra or {})
    return pa.schema([pa.field(name, dtype) for name, dtype in fields.items()])


QUARANTINE_SCHEMA = pa.schema([pa.field(n, t) for n, t in QUARANTINE_COLUMNS.items()])
