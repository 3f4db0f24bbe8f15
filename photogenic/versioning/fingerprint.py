"""md5s of the files a stage reads from outside the datasets (sources, annotation exports).

Local files and folders are hashed by DVC's own code (``dvc_data``), so a folder's md5 is the
``.dir`` md5 that ``dvc add`` / ``dvc.lock`` would record for it. A URL (s3://, gs://) is
identified by its store's checksum (the ETag on S3-compatible stores), which fsspec reports
without reading the object. A pattern matching several files gets one md5 over the sorted
(name, md5) pairs, so adding, removing or changing any shard changes it.

These md5s go into the ZenML step cache key (a changed shard re-runs ingest), into every model
version's lineage tags, and into `photogenic retrain`'s "did anything change" check.
"""

from __future__ import annotations

import hashlib
import json
import os

from photogenic.config import RunConfig
from photogenic.dataset.atomic import filesystem
from photogenic.errors import DataError
from photogenic.paths import is_url
from photogenic.sources.readers import display_name, expand_uri
from photogenic.stages.spec import StageSpec


def external_md5s(spec: StageSpec, config: RunConfig) -> dict[str, str]:
    """name -> md5 of every external input ``spec`` declares, for ``config``."""
    if spec.external_inputs is None:
        return {}
    return {name: uri_md5(uri, config.data.root) for name, uri in sorted(spec.external_inputs(config).items())}


def uri_md5(uri: str, root: str) -> str:
    """The md5 of what ``uri`` (path, URL, glob or brace pattern under ``root``) names."""
    paths = expand_uri(uri, root)
    md5s = {display_name(path, root): path_md5(path) for path in paths}
    if len(md5s) == 1 and not _is_pattern(uri):
        return next(iter(md5s.values()))
    listing = json.dumps(sorted(md5s.items()), separators=(",", ":")).encode()
    return hashlib.md5(listing).hexdigest() + ".set"  # noqa: S324 - a content id, as DVC's


def path_md5(path: str) -> str:
    if is_url(path):
        fs, target = filesystem(path)
        if not fs.exists(target):
            raise DataError(f"{path} does not exist, so its version (md5) cannot be taken.")
        return f"{fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]}:{fs.checksum(target)}"
    if not os.path.exists(path):
        raise DataError(f"{path} does not exist, so its version (md5) cannot be taken.")
    from dvc_data.hashfile.hash import file_md5
    from dvc_objects.fs.local import LocalFileSystem

    fs = LocalFileSystem()
    if os.path.isdir(path):
        return _dir_md5(path, fs)
    return file_md5(path, fs)


def _dir_md5(path: str, fs) -> str:
    import tempfile

    from dvc_data.hashfile.build import build
    from dvc_data.hashfile.db import HashFileDB

    # build() stages the folder's .dir listing in an object store: a throwaway one
    with tempfile.TemporaryDirectory() as staging:
        _, _, obj = build(HashFileDB(fs, staging), path, fs, "md5")
    return obj.hash_info.value


def _is_pattern(uri: str) -> bool:
    return any(c in uri for c in "*?[{")
