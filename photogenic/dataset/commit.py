"""Making several files of a folder change together: a dataset version's manifest, quarantine,
card and other tables (and, for a stage that rebuilds its shards, the new shards) become visible
all at once, and a crash at any moment leaves either the previous version or the new one whole.

One file can be replaced atomically (a rename); several cannot. So every new file is first
written in full under a temporary name (``photogenic.dataset.atomic.staged_open``), then a
journal naming the renames and removals to come is written atomically: that write is the
commit. The renames follow, the manifest last, and the journal is removed.

- A crash before the journal exists leaves the previous version as it was; the temporaries are
  removed by the next writer as leftovers.
- A crash after it leaves a journal, and whoever opens the folder next (a reader or a writer,
  through ``settle``) carries the renames out: every file it names is already complete on disk.
  Carrying them out twice (two readers at once) does no harm.
"""

from __future__ import annotations

import contextlib
import json
import logging

from fsspec.implementations.local import LocalFileSystem

from photogenic.dataset.atomic import Staged, filesystem, fsync_folder, rename, stage_bytes, write_text
from photogenic.paths import join

log = logging.getLogger(__name__)

JOURNAL = ".commit.json"


class VersionCommit:
    """The files of one new version of ``folder``: staged one by one, made visible by ``commit``."""

    def __init__(self, folder: str):
        self.folder = folder.rstrip("/")
        self.staged: list[Staged] = []
        self.removals: list[str] = []

    def add(self, name: str, data: bytes) -> None:
        """Stage ``data`` as ``<folder>/<name>`` (written in full now, visible at the commit)."""
        self.staged.append(stage_bytes(join(self.folder, name), data))

    def add_staged(self, staged: list[Staged]) -> None:
        self.staged.extend(staged)

    def remove(self, name: str) -> None:
        """Delete ``<folder>/<name>`` at the commit (a shard the new version no longer uses)."""
        self.removals.append(name)

    def commit(self, last: str | None = None) -> None:
        """Make every staged file visible; ``last`` (the manifest) is renamed after the others,
        so that a reader that does not settle sees the new manifest only with its companions."""
        order = sorted(self.staged, key=lambda s: s.target.rsplit("/", 1)[-1] == last)
        journal = {"renames": [[self._relative(s.tmp), self._relative(s.target)] for s in order],
                   "remove": sorted(set(self.removals))}
        try:
            write_text(join(self.folder, JOURNAL), json.dumps(journal, indent=1) + "\n")  # the commit point
        except BaseException:
            self.abort()
            raise
        _carry_out(self.folder, journal)

    def abort(self) -> None:
        """Drop the staged files (nothing was made visible)."""
        for staged in self.staged:
            fs, _ = filesystem(staged.tmp)
            with contextlib.suppress(FileNotFoundError, OSError):
                fs.rm(staged.tmp)
        self.staged.clear()

    def _relative(self, path: str) -> str:
        _, root = filesystem(self.folder)
        _, path = filesystem(path)
        if not path.startswith(f"{root}/"):
            raise ValueError(f"{path} is not inside {root}: a commit changes one folder")
        return path[len(root) + 1:]


def settle(folder: str) -> bool:
    """Finish a commit that a crash interrupted in ``folder``; True if there was one."""
    fs, root = filesystem(folder)
    path = join(root, JOURNAL)
    try:
        journal = json.loads(fs.cat_file(path))
    except FileNotFoundError:
        return False
    except ValueError:  # the journal is written atomically: a broken one was not written by us
        log.warning("ignoring %s: not a commit journal", path)
        return False
    log.warning("finishing the commit an interrupted run left in %s", folder)
    _carry_out(folder, journal)
    return True


def _carry_out(folder: str, journal: dict) -> None:
    fs, root = filesystem(folder)
    local = isinstance(fs, LocalFileSystem)
    for tmp, target in journal["renames"]:
        staged = Staged(join(folder, tmp), join(folder, target))
        if fs.exists(join(root, tmp)):
            with contextlib.suppress(FileNotFoundError):  # someone settling at the same time was quicker
                rename(staged)
        elif not fs.exists(join(root, target)):
            log.error("the commit in %s names %s, which is neither staged nor in place", folder, target)
    for name in journal["remove"]:
        with contextlib.suppress(FileNotFoundError):
            fs.rm(join(root, name))
    if local:  # the renames themselves must be durable before the journal that names them goes
        fsync_folder(root)
    with contextlib.suppress(FileNotFoundError):
        fs.rm(join(root, JOURNAL))

