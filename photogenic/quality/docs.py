"""Where a gate's Great Expectations Data Docs go.

GE's own site builder renders the HTML (index, suite pages, one page per validation result) into a
local folder through its filesystem store backend. The site is rebuilt from the gate's in-memory
stores on every run, and GE removes the pages of results those stores no longer hold, so the
folder always shows the latest gate run. A ``docs_dir`` that is a URL (``s3://…``, where the
dataset lives on the cluster) is built in a temp folder and copied there with fsspec, the way
every other dataset file is written.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import fsspec

from photogenic.paths import is_url

#: the name of the single Data Docs site a gate context builds
SITE_NAME = "quality_gate"


def site_config(base_directory: str) -> dict:
    """A Data Docs site on the local filesystem. No "how to" buttons: they only link to GE's
    website, and the report is for the people auditing the dataset."""
    return {
        SITE_NAME: {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": base_directory},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
    }


def index_path(docs_dir: str | os.PathLike, page: str = "index.html") -> str:
    """Where a page of the site ends up: an absolute path, or a URL for remote docs."""
    docs = os.fspath(docs_dir)
    if is_url(docs):
        return f"{docs.rstrip('/')}/{page}"
    return os.path.join(os.path.abspath(docs), page)


@contextmanager
def local_site(docs_dir: str | os.PathLike | None) -> Iterator[str | None]:
    """Yield the local folder GE should build the site in (None: no docs wanted). For a URL,
    the folder is a temp dir whose contents are uploaded when the block ends without error."""
    if docs_dir is None:
        yield None
        return
    docs = os.fspath(docs_dir)
    if not is_url(docs):
        local = os.path.abspath(docs)
        yield local
        _prune_empty_dirs(local)
        return
    with tempfile.TemporaryDirectory(prefix="photogenic-docs-") as local:
        yield local
        fs, root = fsspec.core.url_to_fs(docs)
        fs.put(f"{local}/", root, recursive=True)


def _prune_empty_dirs(site: str) -> None:
    """GE removes the pages of earlier runs but not their (timestamped) folders."""
    for section in ("validations", "expectations"):
        for folder, _, files in os.walk(os.path.join(site, section), topdown=False):
            if not files and not os.listdir(folder):
                os.rmdir(folder)
