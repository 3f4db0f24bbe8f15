"""Faults injected into a child process for the atomicity tests: a SIGKILL at the N-th write
(before the N-th fsync, rename or removal), or a disk that fills up.

Run as ``python -m tests.support.faults kill N STAGE CONFIG`` (the stage alone, through ``run_stage``) or
``python -m tests.support.faults full BYTES COMMAND...`` (a ``photogenic`` command line), in this process
once the fault is armed. A write is counted where it becomes durable or visible: ``os.fsync`` (a
file's data), ``os.replace`` (its name) and ``os.remove``/``os.unlink`` (a file dropped).
"""

from __future__ import annotations

import errno
import os
import signal
import sys

#: where the child reports how many writes it counted (so the parent knows when N was past the end)
COUNT_ENV = "PHOTOGENIC_TEST_WRITE_COUNT"


def arm_kill(n: int) -> None:
    count = [0]

    def counted(original):
        def call(*args, **kwargs):
            count[0] += 1
            if count[0] == n:
                os.kill(os.getpid(), signal.SIGKILL)
            return original(*args, **kwargs)
        return call

    for name in ("fsync", "replace", "remove", "unlink"):
        setattr(os, name, counted(getattr(os, name)))

    import atexit

    path = os.environ.get(COUNT_ENV)
    if path:
        atexit.register(lambda: open(path, "w").write(str(count[0])))


class _FillingFile:
    """A file whose writes fail with ENOSPC once the process has written ``budget`` bytes."""

    written = 0
    budget = 0

    def __init__(self, handle):
        self._handle = handle

    def write(self, data):
        if _FillingFile.written + len(data) > _FillingFile.budget:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        _FillingFile.written += len(data)
        return self._handle.write(data)

    def __getattr__(self, name):
        return getattr(self._handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._handle.__exit__(*exc)


def arm_full(budget: int) -> None:
    """Every write the dataset layer makes (shards, tables, cards) goes through atomic's ``open``."""
    import builtins

    import photogenic.dataset.atomic as atomic

    _FillingFile.budget = budget
    atomic.open = lambda *args, **kwargs: _FillingFile(builtins.open(*args, **kwargs))


def main(argv: list[str]) -> None:
    kind, value, *command = argv
    if kind == "kill":
        from photogenic.config import load_config
        from photogenic.stages.runner import run_stage

        stage, config = command
        loaded = load_config(config)
        arm_kill(int(value))
        run_stage(stage, loaded, progress=False)
        return
    from photogenic.cli import main as photogenic

    arm_full(int(value))
    sys.argv = ["photogenic", *command]
    photogenic()


if __name__ == "__main__":
    main(sys.argv[1:])
