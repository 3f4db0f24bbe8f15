"""Readers for the sources ingest accepts, each yielding RawSamples in a stable order.

- WebDataset tar shards, as img2dataset writes them (``{key}.jpg``, ``{key}.txt``,
  ``{key}.json``), local or any fsspec URL, with glob and brace patterns
  (``shard-{00000..00009}.tar``); tars are streamed, never loaded whole;
- folders of images with sidecar ``.txt`` captions (and optional ``.json`` metadata);
- Parquet or CSV tables with an image column (bytes, a path, or a Hugging Face-style
  ``{"bytes", "path"}`` struct) and a caption column; other columns become source metadata.

A reader never decides whether an image is usable: it hands over the bytes, and reports
problems of the source itself (a missing image file, an unreadable shard) on the sample.
"""

from __future__ import annotations

import json
import posixpath
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import braceexpand
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from photogenic.config import SourceConfig
from photogenic.dataset.atomic import filesystem
from photogenic.errors import DataError
from photogenic.paths import is_url, relative_to, under_root

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff")
_GLOB_CHARS = set("*?[")


@dataclass
class RawSample:
    source_kind: str
    #: stable identity of this occurrence: "<shard>#<key>", "<file>", "<table>#<key>"
    source: str
    image: bytes | None
    image_ext: str | None
    caption: bytes | None
    meta: dict[str, Any] = field(default_factory=dict)
    #: (reason_code, message) when the source itself is broken for this sample
    problem: tuple[str, str] | None = None


def iter_source(config: SourceConfig, root: str) -> Iterator[RawSample]:
    readers = {"webdataset": _iter_webdataset, "folder": _iter_folder, "table": _iter_table}
    yield from readers[config.kind](config, root)


def expand_uri(uri: str, root: str) -> list[str]:
    """Brace-expand, resolve under the data root, and glob; sorted, and an error if empty."""
    paths: list[str] = []
    for pattern in braceexpand.braceexpand(uri):
        path = under_root(root, pattern, what="source uri")
        if _GLOB_CHARS & set(path):
            fs, _ = filesystem(path)
            matches = sorted(fs.glob(path))
            paths.extend(_with_protocol(path, m) for m in matches)
        else:
            paths.append(path)
    if not paths:
        raise DataError(f"The source uri {uri!r} matches no files under {root!r}.")
    return paths


def display_name(path: str, root: str) -> str:
    """How a source path is recorded: relative to the data root when inside it."""
    if is_url(path):
        return path
    rel = relative_to(path, root)
    return path if rel.startswith("../") else rel


def _with_protocol(pattern: str, match: str) -> str:
    if is_url(pattern) and not is_url(match):
        return f"{pattern.split('://', 1)[0]}://{match}"
    return match


# -- WebDataset ---------------------------------------------------------------------------------


def _iter_webdataset(config: SourceConfig, root: str) -> Iterator[RawSample]:
    for path in expand_uri(config.uri, root):
        yield from _iter_tar(path, display_name(path, root))


def _iter_tar(path: str, name: str) -> Iterator[RawSample]:
    fs, target = filesystem(path)
    if not fs.exists(target):
        raise DataError(f"The WebDataset shard {path} does not exist.")
    group: dict[str, bytes] = {}
    key: str | None = None
    try:
        with fs.open(target, "rb") as handle, tarfile.open(fileobj=handle, mode="r|*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                member_key, ext = _split_key(member.name)
                if member_key != key and key is not None:
                    yield _webdataset_sample(name, key, group)
                    group = {}
                key = member_key
                extracted = tar.extractfile(member)
                group[ext] = extracted.read() if extracted else b""
    except (tarfile.TarError, EOFError, OSError) as exc:
        if key is not None:  # the last group may be incomplete: report it with the shard's error
            yield RawSample("webdataset", f"{name}#{key}", None, None, None,
                            problem=("unreadable_shard", f"the shard ends inside this sample: {exc}"))
        yield RawSample("webdataset", f"{name}#<rest>", None, None, None,
                        problem=("unreadable_shard", f"reading {name} stopped: {exc}"))
        return
    if key is not None:
        yield _webdataset_sample(name, key, group)


def _split_key(member_name: str) -> tuple[str, str]:
    """WebDataset's rule: the key is the path up to the first dot of the file name."""
    folder, _, base = member_name.rpartition("/")
    stem, _, ext = base.partition(".")
    return (f"{folder}/{stem}" if folder else stem), ext.lower()


def _webdataset_sample(name: str, key: str, group: dict[str, bytes]) -> RawSample:
    meta, problem = _parse_json(group.get("json"))
    ext = next((e for e in IMAGE_EXTENSIONS if e in group), None)
    if ext is None and problem is None:
        status = meta.get("status")
        if status and status != "success":
            problem = ("download_failed", f"img2dataset status {status}: {meta.get('error_message')}")
        else:
            problem = ("missing_image", f"no image member among {sorted(group)}")
    return RawSample(
        source_kind="webdataset",
        source=f"{name}#{key}",
        image=group.get(ext) if ext else None,
        image_ext=ext,
        caption=group.get("txt"),
        meta=meta,
        problem=problem,
    )


def _parse_json(data: bytes | None) -> tuple[dict[str, Any], tuple[str, str] | None]:
    if data is None:
        return {}, None
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return {}, ("bad_metadata", f"the .json sidecar is not valid JSON: {exc}")
    return (value if isinstance(value, dict) else {"value": value}), None


# -- folders ----------------------------------------------------------------------------------


def _iter_folder(config: SourceConfig, root: str) -> Iterator[RawSample]:
    folder = under_root(root, config.uri, what="source uri")
    fs, target = filesystem(folder)
    if not fs.isdir(target):
        raise DataError(f"The image folder {folder} does not exist or is not a folder.")
    files = sorted(fs.find(target))
    present = set(files)
    for path in files:
        stem, _, ext = path.rpartition(".")
        if ext.lower() not in IMAGE_EXTENSIONS:
            continue
        caption = fs.cat_file(f"{stem}.txt") if f"{stem}.txt" in present else None
        meta, problem = _parse_json(fs.cat_file(f"{stem}.json") if f"{stem}.json" in present else None)
        yield RawSample(
            source_kind="folder",
            source=display_name(_with_protocol(folder, path), root),
            image=fs.cat_file(path),
            image_ext=ext.lower(),
            caption=caption,
            meta=meta,
            problem=problem,
        )


# -- tables -----------------------------------------------------------------------------------


def _iter_table(config: SourceConfig, root: str) -> Iterator[RawSample]:
    path = under_root(root, config.uri, what="source uri")
    fs, target = filesystem(path)
    if not fs.exists(target):
        raise DataError(f"The table {path} does not exist.")
    name = display_name(path, root)
    base = posixpath.dirname(path)
    row_number = 0
    for batch in _table_batches(fs, target, path):
        _check_columns(batch.schema, config, path)
        for row in batch.to_pylist():
            key = row.get(config.key_column) if config.key_column else row_number
            row_number += 1
            yield _table_sample(row, config, base, f"{name}#{key}")


def _table_batches(fs, target: str, path: str) -> Iterator[pa.RecordBatch]:
    suffix = path.lower().rsplit(".", 1)[-1]
    with fs.open(target, "rb") as handle:
        if suffix == "parquet":
            yield from pq.ParquetFile(handle).iter_batches(batch_size=256)
        elif suffix in ("csv", "tsv"):
            options = pacsv.ParseOptions(delimiter="\t" if suffix == "tsv" else ",")
            yield from pacsv.open_csv(handle, parse_options=options)
        else:
            raise DataError(f"The table {path} must be .parquet, .csv or .tsv.")


def _check_columns(schema: pa.Schema, config: SourceConfig, path: str) -> None:
    needed = [config.image_column, config.caption_column] + ([config.key_column] if config.key_column else [])
    missing = [c for c in needed if c not in schema.names]
    if missing:
        raise DataError(
            f"The table {path} has no column {', '.join(map(repr, missing))} (it has {', '.join(schema.names)}); "
            "set image_column / caption_column / key_column on the source."
        )


def _table_sample(row: dict[str, Any], config: SourceConfig, base: str, source: str) -> RawSample:
    value = row.pop(config.image_column)
    caption = row.pop(config.caption_column)
    if isinstance(caption, str):
        caption = caption.encode("utf-8")
    image, ext, problem = _table_image(value, base)
    meta = {k: v for k, v in row.items() if _jsonable(v)}
    return RawSample("table", source, image, ext, caption, meta, problem)


def _table_image(value: Any, base: str) -> tuple[bytes | None, str | None, tuple[str, str] | None]:
    if isinstance(value, dict):  # Hugging Face datasets' Image feature: {"bytes": ..., "path": ...}
        value = value.get("bytes") or value.get("path")
    if isinstance(value, bytes):
        return value, None, None
    if isinstance(value, str) and value:
        path = value if is_url(value) or posixpath.isabs(value) else posixpath.join(base, value)
        fs, target = filesystem(path)
        if not fs.exists(target):
            return None, None, ("missing_image", f"the image file {value} does not exist")
        return fs.cat_file(target), value.rsplit(".", 1)[-1].lower(), None
    return None, None, ("missing_image", "the image column is empty")


def _jsonable(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))
