"""Readers for the sources ingest accepts, each yielding RawSamples in a stable order.

- WebDataset tar shards, as img2dataset writes them (``{key}.jpg``, ``{key}.txt``,
  ``{key}.json``), local or any fsspec URL, with glob and brace patterns
  (``shard-{00000..00009}.tar``); tars are streamed, never loaded whole;
- folders of images with sidecar ``.txt`` captions (and optional ``.json`` metadata);
- Parquet or CSV tables with an image column (bytes, a path, or a Hugging Face-style
  ``{"bytes", "path"}`` struct) and a caption column; other columns become source metadata.

A reader never decides whether an image is usable: it hands over the bytes, and reports
problems of the source itself (a missing image file, an unreadable shard) on the sample.

Sources are untrusted, so a reader reads only what it needs and never leaves the source:
- sizes are checked from the tar header or the file system before anything is read
  (``ReadLimits``): an image over ``ingest.max_image_bytes``, a caption or metadata sidecar over
  its cap, is never loaded;
- a tar member that is a link or a device, or whose name is absolute or climbs with ``..``,
  is never read, and its sample is quarantined saying so; so is a sample with two members of
  one extension or two images, and the later part of a key split by another key;
- a folder source never follows a link out of the folder; a table's image cells name files
  relative to the table, inside the data folder (or the table's own folder when the table lies
  outside it): absolute paths, URLs and paths that climb out are refused per row.
"""

from __future__ import annotations

import json
import lzma
import os
import posixpath
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import braceexpand
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from photogenic.config import IngestConfig, SourceConfig
from photogenic.dataset.atomic import filesystem
from photogenic.dataset.schema import CAPTION_TOO_LARGE
from photogenic.errors import DataError
from photogenic.paths import is_url, relative_to, under_root
from photogenic.safety.parsing import UntrustedInput, parse_json

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff")
_GLOB_CHARS = set("*?[")
#: what a corrupt or hostile compressed tar raises while it is streamed
_UNREADABLE = (tarfile.TarError, EOFError, OSError, ValueError, zlib.error, lzma.LZMAError, UnicodeError)
#: a caption is a sentence or a paragraph; far beyond this it is not a caption
MAX_CAPTION_BYTES = 64 * 2**10
#: img2dataset's .json is a few hundred bytes; a table row's other columns alike
MAX_META_BYTES = 2**20


@dataclass(frozen=True)
class ReadLimits:
    """The most bytes a reader loads for one sample's image, caption and metadata."""

    max_image_bytes: int = 64 * 2**20
    max_caption_bytes: int = MAX_CAPTION_BYTES
    max_meta_bytes: int = MAX_META_BYTES

    @classmethod
    def of(cls, settings: IngestConfig) -> ReadLimits:
        # a caption longer than max_caption_chars is cut but kept whole in caption_raw: read
        # enough bytes for that (4 per character at most in UTF-8), and never megabytes
        return cls(settings.max_image_bytes, max(MAX_CAPTION_BYTES, 4 * settings.max_caption_chars), MAX_META_BYTES)


@dataclass
class RawSample:
    source_kind: str
    #: stable identity of this occurrence: "<shard>#<key>", "<file>", "<table>#<key>"
    source: str
    image: bytes | None
    image_ext: str | None
    caption: bytes | None
    meta: dict[str, Any] = field(default_factory=dict)
    #: (reason_code, message) when the source itself gives this sample no usable image; such
    #: a sample is quarantined with it
    problem: tuple[str, str] | None = None
    #: the image's size in bytes when it was too large to read
    size: int | None = None
    #: the caption status when the reader left the caption unread (too large)
    caption_status: str | None = None
    #: problems that leave the sample usable (unreadable metadata), kept in its source_meta
    notes: list[str] = field(default_factory=list)
    #: the input shard the sample came from (a tar; a table or a folder is one): ingest's unit
    #: of output and of resume
    unit: str = ""


def iter_source(config: SourceConfig, root: str, limits: ReadLimits = ReadLimits()) -> Iterator[RawSample]:
    readers = {"webdataset": _iter_webdataset, "folder": _iter_folder, "table": _iter_table}
    for sample in readers[config.kind](config, root, limits):
        sample.unit = sample.unit or config.uri
        yield sample


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


def _too_large(what: str, size: int, limit: int, key: str) -> str:
    return f"the {what} is {size} bytes, over the limit of {limit} ({key}); it was not read"


# -- WebDataset ---------------------------------------------------------------------------------


def _iter_webdataset(config: SourceConfig, root: str, limits: ReadLimits) -> Iterator[RawSample]:
    for path in expand_uri(config.uri, root):
        name = display_name(path, root)
        for sample in iter_tar(path, name, limits):
            sample.unit = name
            yield sample


def iter_tar(path: str, name: str, limits: ReadLimits = ReadLimits()) -> Iterator[RawSample]:
    """The samples of one WebDataset shard; a shard that stops being readable ends with a
    sample that says so (the rest of the shard), never with an exception."""
    fs, target = filesystem(path)
    if not fs.exists(target):
        raise DataError(f"The WebDataset shard {path} does not exist.")
    group: _Group | None = None
    parts: dict[str, int] = {}  # key -> how many runs of members it had so far
    try:
        with fs.open(target, "rb") as handle, tarfile.open(fileobj=handle, mode="r|*") as tar:
            for member in tar:
                if member.isdir():
                    continue
                member_key, ext = _split_key(member.name)
                if group is not None and member_key != group.key:
                    yield group.sample()
                    group = None
                if group is None:
                    parts[member_key] = parts.get(member_key, 0) + 1
                    group = _Group(name, member_key, parts[member_key], limits)
                group.add(tar, member, ext)
            # tarfile ends quietly where a header is cut short (or missing): a shard that does not
            # end with its zero block was cut short, and its last sample may be incomplete
            if tar.fileobj.tell() < tar.offset + tarfile.BLOCKSIZE:
                raise tarfile.ReadError("the shard ends without its end-of-archive block: it was cut short")
    except _UNREADABLE as exc:
        if group is not None:  # the last group may be incomplete: report it with the shard's error
            yield RawSample("webdataset", group.source, None, None, None,
                            problem=("unreadable_shard", f"the shard ends inside this sample: {exc}"))
        yield RawSample("webdataset", f"{name}#<rest>", None, None, None,
                        problem=("unreadable_shard", f"reading {name} stopped: {exc}"))
        return
    if group is not None:
        yield group.sample()


def _split_key(member_name: str) -> tuple[str, str]:
    """WebDataset's rule: the key is the path up to the first dot of the file name."""
    folder, _, base = member_name.rpartition("/")
    stem, _, ext = base.partition(".")
    return (f"{folder}/{stem}" if folder else stem), ext.lower()


def _member_kind(member: tarfile.TarInfo) -> str:
    return ("symbolic link" if member.issym() else "hard link" if member.islnk() else
            "character device" if member.ischr() else "block device" if member.isblk() else
            "FIFO" if member.isfifo() else f"member of type {member.type!r}")


class _Group:
    """The members of one key as they stream past: read when wanted and within limits."""

    def __init__(self, shard: str, key: str, part: int, limits: ReadLimits):
        self.shard, self.key, self.part, self.limits = shard, key, part, limits
        self.source = f"{shard}#{key}" if part == 1 else f"{shard}#{key} (part {part})"
        self.data: dict[str, bytes] = {}
        self.unread: dict[str, int] = {}  # ext -> size of a wanted member too large to read
        self.other: list[str] = []  # exts of members no sample uses
        self.unsafe: list[str] = []
        self.repeated: list[str] = []

    def add(self, tar: tarfile.TarFile, member: tarfile.TarInfo, ext: str) -> None:
        limits = self.limits
        name = member.name
        if not member.isfile():
            self.unsafe.append(f"{name!r} is a {_member_kind(member)}")
            return
        parts = PurePosixPath(name).parts
        if name.startswith("/") or ".." in parts:
            self.unsafe.append(f"{name!r} has an absolute or climbing ('..') name")
            return
        if ext in self.data or ext in self.unread or ext in self.other:
            self.repeated.append(name)
            return
        limit = (limits.max_image_bytes if ext in IMAGE_EXTENSIONS else limits.max_caption_bytes if ext == "txt"
                 else limits.max_meta_bytes if ext == "json" else None)
        if limit is None:
            self.other.append(ext)  # not part of a sample: never read
        elif member.size > limit:
            self.unread[ext] = member.size
        else:
            extracted = tar.extractfile(member)
            self.data[ext] = extracted.read() if extracted else b""

    def sample(self) -> RawSample:
        meta, meta_problem = self._meta()
        images = [e for e in IMAGE_EXTENSIONS if e in self.data or e in self.unread]
        problem = self._problem(images, meta, meta_problem)
        notes = [meta_problem[1]] if meta_problem and problem is None else []
        caption_status = CAPTION_TOO_LARGE if "txt" in self.unread else None
        if caption_status:
            notes.append(_too_large(".txt caption", self.unread["txt"], self.limits.max_caption_bytes, "caption cap"))
        ext = images[0] if images else None
        usable = problem is None and ext in self.data
        return RawSample("webdataset", self.source, self.data[ext] if usable else None, ext if usable else None,
                         self.data.get("txt"), meta, problem, size=self.unread.get(ext), caption_status=caption_status,
                         notes=notes)

    def _meta(self) -> tuple[dict[str, Any], tuple[str, str] | None]:
        if "json" in self.unread:
            return {}, ("bad_metadata", _too_large(".json sidecar", self.unread["json"], self.limits.max_meta_bytes,
                                                   "metadata cap"))
        return _parse_json(self.data.get("json"))

    def _problem(self, images: list[str], meta: dict[str, Any], meta_problem) -> tuple[str, str] | None:
        if self.unsafe:
            return "unsafe_member", f"never read: {'; '.join(self.unsafe)}; a shard holds regular files only"
        if self.part > 1:
            return "split_key", (f"members of key {self.key!r} after another key's (WebDataset keeps a sample's "
                                 "members together); its earlier members were read as a sample of their own")
        if self.repeated:
            names = ", ".join(map(repr, self.repeated))
            return "duplicate_member", f"the sample has more than one member named {names}"
        if len(images) > 1:
            return "multiple_images", f"the sample has {len(images)} images ({', '.join(images)}); which one is meant?"
        if images and images[0] in self.unread:
            return "file_too_large", _too_large("image", self.unread[images[0]], self.limits.max_image_bytes,
                                                "ingest.max_image_bytes")
        if not images:
            if meta_problem is not None:
                return meta_problem
            status = meta.get("status")
            if status and status != "success":
                return "download_failed", f"img2dataset status {status}: {meta.get('error_message')}"
            members = sorted(set(self.data) | set(self.unread) | set(self.other))
            return "missing_image", f"no image member among {members}"
        return None


def _parse_json(data: bytes | None) -> tuple[dict[str, Any], tuple[str, str] | None]:
    if data is None:
        return {}, None
    try:
        value = parse_json(data, "the .json sidecar")
    except UntrustedInput as exc:
        return {}, ("bad_metadata", str(exc))
    return (value if isinstance(value, dict) else {"value": value}), None


# -- folders ----------------------------------------------------------------------------------


def _iter_folder(config: SourceConfig, root: str, limits: ReadLimits) -> Iterator[RawSample]:
    folder = under_root(root, config.uri, what="source uri")
    fs, target = filesystem(folder)
    if not fs.isdir(target):
        raise DataError(f"The image folder {folder} does not exist or is not a folder.")
    local = not is_url(folder)
    files, linked_folders = _listing(fs, target, local)
    for path in linked_folders:
        yield RawSample("folder", display_name(_with_protocol(folder, path), root), None, None, None,
                        problem=("unsafe_path", "a link to a folder; a folder source never follows links to folders"))
    for path in sorted(files):
        stem, _, ext = path.rpartition(".")
        if ext.lower() not in IMAGE_EXTENSIONS:
            continue
        source = display_name(_with_protocol(folder, path), root)
        if local and not _inside(path, target):
            yield RawSample("folder", source, None, None, None, problem=(
                "unsafe_path", f"a link to {os.path.realpath(path)}, outside the folder {folder}; never read"))
            continue
        if files[path] > limits.max_image_bytes:
            yield RawSample("folder", source, None, ext.lower(), None, size=files[path], problem=(
                "file_too_large", _too_large("image", files[path], limits.max_image_bytes, "ingest.max_image_bytes")))
            continue
        sample = RawSample("folder", source, fs.cat_file(path), ext.lower(), None)
        caption = _sidecar(fs, files, f"{stem}.txt", target, local, limits.max_caption_bytes, sample)
        if isinstance(caption, int):
            sample.caption_status = CAPTION_TOO_LARGE
            sample.notes.append(_too_large(".txt caption", caption, limits.max_caption_bytes, "caption cap"))
        else:
            sample.caption = caption
        meta = _sidecar(fs, files, f"{stem}.json", target, local, limits.max_meta_bytes, sample)
        if isinstance(meta, int):
            sample.notes.append(_too_large(".json sidecar", meta, limits.max_meta_bytes, "metadata cap"))
        else:
            sample.meta, problem = _parse_json(meta)
            sample.notes += [problem[1]] if problem else []
        yield sample


def _listing(fs, target: str, local: bool) -> tuple[dict[str, int], list[str]]:
    """path -> size of every file under ``target``, and the links to folders found (local
    folders are walked without following links, so a link cannot lead the walk outside)."""
    if not local:
        return {p: int(info.get("size") or 0) for p, info in fs.find(target, detail=True).items()}, []
    files: dict[str, int] = {}
    linked: list[str] = []
    for folder, subfolders, names in os.walk(target, followlinks=False):
        linked += [os.path.join(folder, d) for d in subfolders if os.path.islink(os.path.join(folder, d))]
        for name in names:
            path = os.path.join(folder, name)
            try:
                files[path] = os.stat(path).st_size
            except OSError:  # a dangling link: no file to read, listed as size 0
                files[path] = 0
    return files, sorted(linked)


def _sidecar(fs, files: dict[str, int], path: str, folder: str, local: bool, limit: int,
             sample: RawSample) -> bytes | int | None:
    """A sidecar's bytes; its size when over ``limit``; None when absent or a link out of the folder."""
    if path not in files:
        return None
    if local and not _inside(path, folder):
        sample.notes.append(f"{posixpath.basename(path)} is a link out of the folder; not read")
        return None
    return files[path] if files[path] > limit else fs.cat_file(path)


def _inside(path: str, folder: str) -> bool:
    """Whether ``path``, links resolved, lies inside ``folder`` (links resolved too)."""
    real, boundary = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath([real, boundary]) == boundary


# -- tables -----------------------------------------------------------------------------------


def _iter_table(config: SourceConfig, root: str, limits: ReadLimits) -> Iterator[RawSample]:
    path = under_root(root, config.uri, what="source uri")
    fs, target = filesystem(path)
    if not fs.exists(target):
        raise DataError(f"The table {path} does not exist.")
    name = display_name(path, root)
    base = posixpath.dirname(path)
    # image cells may name files anywhere in the data folder, or, for a table outside it, in its own folder
    boundary = base if is_url(path) or relative_to(path, root).startswith("../") else root
    row_number = 0
    keys: set[str] = set()
    batches = _table_batches(fs, target, path)
    while True:
        try:
            batch = next(batches, None)
        except (pa.ArrowException, OSError, ValueError) as exc:  # ArrowInvalid is a ValueError too
            yield RawSample("table", f"{name}#<rest>", None, None, None, problem=(
                "unreadable_table", f"reading {name} stopped after {row_number} rows: {exc}"))
            return
        if batch is None:
            return
        _check_columns(batch.schema, config, path)
        for row in batch.to_pylist():
            key = row.get(config.key_column) if config.key_column else row_number
            row_number += 1
            source = f"{name}#{key}"
            if source in keys:
                yield RawSample("table", f"{source} (row {row_number})", None, None, None, problem=(
                    "duplicate_key", f"row {row_number} repeats the key {key!r} of an earlier row "
                                     f"({config.key_column})"))
                continue
            keys.add(source)
            yield _table_sample(row, config, base, boundary, source, limits)


def _table_batches(fs, target: str, path: str) -> Iterator[pa.RecordBatch]:
    suffix = path.lower().rsplit(".", 1)[-1]
    if suffix not in ("parquet", "csv", "tsv"):
        raise DataError(f"The table {path} must be .parquet, .csv or .tsv.")
    with fs.open(target, "rb") as handle:
        if suffix == "parquet":
            yield from pq.ParquetFile(handle).iter_batches(batch_size=256)
        else:
            options = pacsv.ParseOptions(delimiter="\t" if suffix == "tsv" else ",")
            yield from pacsv.open_csv(handle, parse_options=options)


def _check_columns(schema: pa.Schema, config: SourceConfig, path: str) -> None:
    needed = [config.image_column, config.caption_column] + ([config.key_column] if config.key_column else [])
    missing = [c for c in needed if c not in schema.names]
    if missing:
        raise DataError(
            f"The table {path} has no column {', '.join(map(repr, missing))} (it has {', '.join(schema.names)}); "
            "set image_column / caption_column / key_column on the source."
        )


def _table_sample(row: dict[str, Any], config: SourceConfig, base: str, boundary: str, source: str,
                  limits: ReadLimits) -> RawSample:
    value = row.pop(config.image_column)
    caption = row.pop(config.caption_column)
    image, ext, problem, size = _table_image(value, base, boundary, limits)
    sample = RawSample("table", source, image, ext, None, problem=problem, size=size)
    if isinstance(caption, str):
        caption = caption.encode("utf-8")
    if caption is not None and not isinstance(caption, bytes):
        sample.notes.append(f"the caption cell holds {type(caption).__name__}, not text")
    elif caption is not None and len(caption) > limits.max_caption_bytes:
        sample.caption_status = CAPTION_TOO_LARGE
        sample.notes.append(_too_large("caption cell", len(caption), limits.max_caption_bytes, "caption cap"))
    else:
        sample.caption = caption
    meta = {k: v for k, v in row.items() if _jsonable(v)}
    size = len(json.dumps(meta, default=str))
    if size > limits.max_meta_bytes:
        sample.notes.append(_too_large("row's other columns", size, limits.max_meta_bytes, "metadata cap"))
    else:
        sample.meta = meta
    return sample


def _table_image(value: Any, base: str, boundary: str,
                 limits: ReadLimits) -> tuple[bytes | None, str | None, tuple[str, str] | None, int | None]:
    if isinstance(value, dict):  # Hugging Face datasets' Image feature: {"bytes": ..., "path": ...}
        value = value.get("bytes") or value.get("path")
    if isinstance(value, bytes):
        if len(value) > limits.max_image_bytes:
            return None, None, ("file_too_large", _too_large("image cell", len(value), limits.max_image_bytes,
                                                            "ingest.max_image_bytes")), len(value)
        return value, None, None, None
    if value is None or value == "":
        return None, None, ("missing_image", "the image column is empty"), None
    if not isinstance(value, str):
        return None, None, ("bad_image_cell", f"the image cell holds {type(value).__name__}, not bytes or a "
                                              "path"), None
    path, refusal = _cell_path(value, base, boundary)
    if refusal is not None:
        return None, None, ("unsafe_path", refusal), None
    fs, target = filesystem(path)
    if not fs.isfile(target):
        return None, None, ("missing_image", f"the image file {value} does not exist"), None
    size = fs.size(target)
    if size > limits.max_image_bytes:
        return None, None, ("file_too_large", _too_large("image", size, limits.max_image_bytes,
                                                        "ingest.max_image_bytes")), size
    return fs.cat_file(target), value.rsplit(".", 1)[-1].lower(), None, None


def _cell_path(value: str, base: str, boundary: str) -> tuple[str, str | None]:
    """Where an image cell points, or why it may not be read: only a relative path that stays
    inside ``boundary``, links resolved, names a file a table may read."""
    refuse = f"the image cell {value[:200]!r} "
    if is_url(value) or "::" in value:
        return "", refuse + "is a URL; an image cell names a file relative to the table"
    if PurePosixPath(value).is_absolute() or "\0" in value:
        return "", refuse + "is an absolute path; an image cell names a file relative to the table"
    if is_url(base):
        relative = posixpath.normpath(value)
        if relative == ".." or relative.startswith("../"):
            return "", refuse + f"climbs out of the table's folder {base}"
        return posixpath.join(base, relative), None
    path = posixpath.normpath(posixpath.join(base, value))
    if relative_to(path, boundary).startswith("../") or relative_to(path, boundary) == "..":
        return "", refuse + f"leaves the folder {boundary}"
    if not _inside(path, boundary):
        return "", refuse + f"is a link to {os.path.realpath(path)}, outside the folder {boundary}"
    return path, None


def _jsonable(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))
