"""Errors a user can cause. The CLI turns them into a one-paragraph message and exit code 2.

Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno

#: what a full disk or an exhausted quota raises (OSError.errno)
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class PhotogenicError(Exception):
    """An error caused by input the user controls (config, paths, data, annotation files)."""

    #: process exit code the CLI uses for this kind of error
    exit_code = 2


class ConfigError(PhotogenicError):
    """The run configuration is invalid: unknown key, bad value, unreadable file."""


class DataError(PhotogenicError):
    """Input data cannot be used as given: missing source, path outside the data folder."""


class QualityGateError(PhotogenicError):
    """A dataset failed its Great Expectations suite; downstream stages must not run."""

    exit_code = 3


class StorageError(PhotogenicError):
    """Writing failed for want of space (disk full, quota exceeded); what was written before is intact."""


class WorkerDied(PhotogenicError):
    """A worker process died (killed, e.g. by the out-of-memory killer) on the same item twice."""


class LockedError(PhotogenicError):
    """Another run holds the data folder's lock."""
