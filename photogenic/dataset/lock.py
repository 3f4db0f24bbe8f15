"""One writer at a time per data folder: an advisory lock held for the whole of a stage.

Two runs on one data root would otherwise pick the same new shard index, delete each other's
temporary shards as leftovers of a crash, and lose entries of ``versions.jsonl``. The lock is a
``flock`` on ``<data.root>/.photogenic.lock``, which the kernel releases when the holder dies,
so a killed run never leaves the folder locked; the file records who holds it (pid, host, what,
since) for the message the next run gets. A second run refuses at once, naming the holder, or
waits for it up to ``PHOTOGENIC_LOCK_WAIT`` seconds.

The lock is re-entrant within a process (a stage that versions its output, or the curation stage
calling the importer, takes it again). Data at a URL (an object store) has no advisory locks: on
a cluster every task has its own copy of the data, and shares nothing but the DVC remote.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import socket
import threading
import time
from collections.abc import Iterator

from photogenic.errors import ConfigError, LockedError
from photogenic.paths import is_url

LOCK_NAME = ".photogenic.lock"
WAIT_ENV = "PHOTOGENIC_LOCK_WAIT"
_POLL = 0.2

_held: dict[str, list[int]] = {}  # lock file -> [fd, depth]
_guard = threading.Lock()


@contextlib.contextmanager
def data_root_lock(root: str, purpose: str, wait: float = 0.0) -> Iterator[None]:
    """Hold ``root``'s lock for the block; ``purpose`` (e.g. "stage ingest") tells others why.
    A held lock is waited for ``wait`` seconds, or longer if PHOTOGENIC_LOCK_WAIT says so."""
    if is_url(root) or int(os.environ.get("RANK") or 0) != 0:
        # a training launcher's other ranks run inside the rank-0 process's stage: they write nothing
        yield
        return
    os.makedirs(root, exist_ok=True)
    path = os.path.realpath(os.path.join(root, LOCK_NAME))
    with _guard:
        entry = _held.get(path)
        if entry is not None:
            entry[1] += 1
    if entry is None:
        fd = _acquire(path, root, purpose, max(wait, _wait_seconds()))
        with _guard:
            _held[path] = [fd, 1]
    try:
        yield
    finally:
        with _guard:
            entry = _held[path]
            entry[1] -= 1
            last = entry[1] == 0
            if last:
                del _held[path]
        if last and entry[0] >= 0:  # a forked child's entry has no descriptor: its parent holds the lock
            os.ftruncate(entry[0], 0)
            fcntl.flock(entry[0], fcntl.LOCK_UN)
            os.close(entry[0])


def _after_fork_in_child() -> None:
    """A forked child (a DataLoader or decode worker) closes its copy of the lock's descriptor.
    A flock belongs to the open file, which a child shares: a worker that outlived its killed
    parent would keep the data folder locked, and the resumed run would be refused. Closing a
    copy releases nothing; the child still counts as inside the parent's lock (re-entrant)."""
    global _guard
    _guard = threading.Lock()  # another thread of the parent may have held it at the fork
    for entry in _held.values():
        if entry[0] >= 0:
            with contextlib.suppress(OSError):
                os.close(entry[0])
            entry[0] = -1


os.register_at_fork(after_in_child=_after_fork_in_child)


def _acquire(path: str, root: str, purpose: str, wait: float) -> int:
    deadline = time.monotonic() + wait
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                holder = holder_of(path)
                os.close(fd)
                waited = f" after waiting {wait:g} s" if wait else ""
                raise LockedError(
                    f"The data folder {root} is in use{waited}: {describe(holder)} holds {path}. A second run on the "
                    "same data would overwrite the first one's shards and versions. Wait for it to finish (or stop "
                    f"it), or set {WAIT_ENV}=<seconds> to wait for it.") from None
            time.sleep(_POLL)
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "purpose": purpose,
              "since": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
    return fd


def holder_of(path: str) -> dict:
    """What the lock file says about its holder ({} while it is being written or unreadable)."""
    try:
        with open(path, encoding="utf-8") as handle:
            value = json.loads(handle.read() or "{}")
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def describe(holder: dict) -> str:
    if not holder:
        return "another process (its pid and host are not recorded yet)"
    return (f"process {holder.get('pid')} on host {holder.get('host')} ({holder.get('purpose')}, since "
            f"{holder.get('since')})")


def _wait_seconds() -> float:
    value = os.environ.get(WAIT_ENV, "")
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        raise ConfigError(f"{WAIT_ENV} is {value!r}; set it to a number of seconds to wait for the data "
                          "folder's lock.") from None
