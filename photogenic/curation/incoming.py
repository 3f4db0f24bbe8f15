"""People's annotation exports from where they land (``curation.exports``: a folder, or a bucket
a cluster's pods reach), copied into each stage's annotations folder before the stage imports.

A file's name comes from outside the project, so only plain names are taken (letters, digits,
``.``, ``_``, ``-``; a Label Studio or CSV export's extension); a file already there with the
same bytes is left alone, one with other bytes under the same name is an error rather than a
silent replacement of labels people made.
"""

from __future__ import annotations

import logging
import re

from photogenic.config import RunConfig
from photogenic.curation.layout import CurationLayout
from photogenic.dataset.atomic import filesystem, write_bytes
from photogenic.errors import DataError
from photogenic.paths import join

log = logging.getLogger(__name__)

_PLAIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.(json|csv)$", re.IGNORECASE)


def landed_exports(config: RunConfig, stage: int) -> list[str]:
    """The exports under ``<curation.exports>/stage<N>/`` (empty when none is configured)."""
    if not config.curation.exports:
        return []
    fs, folder = filesystem(join(config.curation.exports, f"stage{stage}"))
    if not fs.exists(folder):
        return []
    found = []
    for path in sorted(fs.ls(folder, detail=False)):
        name = path.rsplit("/", 1)[-1]
        if not _PLAIN.match(name):
            raise DataError(f"The annotation export {path!r} in curation.exports has a name that is not a plain file "
                            "name ending in .json or .csv; rename it (letters, digits, '.', '_', '-').")
        found.append(join(config.curation.exports, f"stage{stage}", name))
    return found


def fetch_exports(config: RunConfig) -> list[str]:
    """Copy the landed exports into the stages' annotations folders; returns the files copied."""
    layout = CurationLayout.of(config)
    copied = []
    for stage in (1, 2):
        for source in landed_exports(config, stage):
            target = join(layout.annotations(stage), source.rsplit("/", 1)[-1])
            source_fs, source_path = filesystem(source)
            data = source_fs.cat_file(source_path)
            target_fs, target_path = filesystem(target)
            if target_fs.exists(target_path):
                if target_fs.cat_file(target_path) == data:
                    continue
                raise DataError(f"{target} already holds another export than {source} under the same name; "
                                "rename one of them, so that no labels are replaced unseen.")
            write_bytes(target, data)
            copied.append(target)
    if copied:
        log.info("curation: %d annotation exports copied from %s", len(copied), config.curation.exports)
    return copied
