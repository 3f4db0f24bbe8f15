"""Leaving the process once its work is done and reported, without the interpreter's teardown.

Now and then a native thread pool (pyarrow's: apache/arrow#34314) aborts while the interpreter
destroys it ("terminate called without an active exception"), which turns a finished run's exit
code into a SIGABRT after everything was printed and written. The callers here have nothing left
to do, so they flush and leave at once.
"""

from __future__ import annotations

import logging
import os
import sys


def exit_now(code: int) -> None:
    """Flush logs and standard streams, then end the process with ``code``."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
