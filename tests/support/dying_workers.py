"""Functions the data plane's workers import by name (they cannot see a test's monkeypatches):
they end their own process, as the out-of-memory killer would, on chosen items."""

from __future__ import annotations

import os
import signal

from photogenic.stages.ingest_worker import run_probe

#: a caption that makes the probe below kill its worker, every time
KILL_CAPTION = b"this caption kills the decode worker"
#: a caption whose sample's first decode worker dies (a death the sample did not cause), once the
#: file named by the env var DIE_ONCE_ENV does not exist yet
DIE_ONCE_CAPTION = b"the decode worker dies under this one, once"
DIE_ONCE_ENV = "PHOTOGENIC_TEST_DIE_ONCE"


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def square_or_die(item: int) -> int:
    """``item ** 2``, but the worker dies on every negative item."""
    if item < 0:
        die()
    return item * item


def square_or_die_once(task: tuple[int, str]) -> int:
    """``item ** 2``; the first worker to meet the item whose marker file does not exist yet
    creates it and dies (a death the item did not cause: its retry succeeds)."""
    item, marker = task
    if marker and not os.path.exists(marker):
        with open(marker, "w"):
            pass
        die()
    return item * item


class BatchSizes:
    """A model step (it runs in actors): each item's result is the size of the batch it came in,
    so that a test can tell the batches; the first actor to meet the marker file missing
    creates it and dies (a death no item caused), once."""

    def __init__(self, marker: str = ""):
        self.marker = marker

    def __call__(self, items: list) -> list[int]:
        if self.marker and not os.path.exists(self.marker):
            with open(self.marker, "w"):
                pass
            die()
        return [len(items)] * len(items)


class UnloadableModel:
    """A model step whose model cannot load: a ConfigError, as a bad checkpoint gives."""

    def __init__(self):
        from photogenic.errors import ConfigError

        raise ConfigError("model.checkpoint = 'nowhere' could not be loaded")


def probe_or_die(task):
    """Ingest's probe, except on the sample whose caption is KILL_CAPTION (and, once, on the one
    whose caption is DIE_ONCE_CAPTION)."""
    if task.caption == KILL_CAPTION:
        die()
    marker = os.environ.get(DIE_ONCE_ENV)
    if task.caption == DIE_ONCE_CAPTION and marker and not os.path.exists(marker):
        with open(marker, "w") as handle:
            handle.write(str(os.getpid()))
        die()
    return run_probe(task)


def slow_probe(task, seconds: float = 0.05):
    """Ingest's probe, 50 ms slower: an ingest that holds its lock long enough to be met."""
    import time

    time.sleep(seconds)
    return run_probe(task)


def slower_probe(task):
    """Ingest's probe, 100 ms slower: an ingest slow enough to be killed in the middle."""
    return slow_probe(task, 0.1)
