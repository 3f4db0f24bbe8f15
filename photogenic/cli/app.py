"""The root ``photogenic`` command: the command groups of this package joined, and the one place
that turns a user error into a message and an exit code.

Errors the user can cause (bad config, bad path, failed quality gate) end with a one-paragraph
message and a non-zero exit code, not a traceback.
"""

from __future__ import annotations

import logging
import sys

import typer

from photogenic.cli import curation, dashboards, data, evaluate, kfp, lineage, recipe
from photogenic.cli import filter as filtering
from photogenic.errors import NO_SPACE, PhotogenicError, StorageError
from photogenic.exiting import exit_now
from photogenic.safety.secrets import redact, redact_output

app = typer.Typer(
    help="photogenic: curate photogenic images from a large image–text pool and quality-tune a "
    "text-to-image diffusion model on them (the Emu recipe).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(recipe.app)  # sample-pool, run, step, config, retrain: top-level commands
app.add_typer(data.app, name="data")
app.add_typer(filtering.app, name="filter")
app.add_typer(curation.app, name="curation")
app.add_typer(evaluate.app, name="evaluate")
app.add_typer(kfp.app, name="kfp")
app.add_typer(lineage.app, name="lineage")
app.add_typer(dashboards.app)


def main() -> None:
    # only photogenic's own loggers: ZenML, DVC and GE print through their own handlers, and a
    # root handler here would print their lines twice
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    redact_output(handler)  # no URI's user:password@ reaches a terminal or a CI log, nor does a traceback
    logger = logging.getLogger("photogenic")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        app()
    except PhotogenicError as exc:
        typer.secho(redact(f"Error: {exc}"), fg=typer.colors.RED, err=True)
        # the message is the whole outcome of a user error (pyarrow's pool aborted here once,
        # after a failed import of an annotation file, turning exit code 2 into a SIGABRT)
        exit_now(exc.exit_code)
    except OSError as exc:
        if exc.errno not in NO_SPACE:
            raise
        # a full disk outside the dataset layer (which says which version is intact): a checkpoint, a report
        typer.secho(redact(f"Error: no space left on the device ({exc}). Free space and run again."),
                    fg=typer.colors.RED, err=True)
        exit_now(StorageError.exit_code)
