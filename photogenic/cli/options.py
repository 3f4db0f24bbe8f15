"""The options the commands share, and how they read the run config."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from photogenic.config import RunConfig, load_config

ConfigOption = Annotated[
    Optional[Path], typer.Option("--config", "-c", help="Run config (YAML). Defaults apply where it is silent.")
]
SetOption = Annotated[
    Optional[list[str]],
    typer.Option("--set", "-s", help="Override a config value: section.key=value (repeatable)."),
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def existing_config(config: Path | None, overrides: list[str] | None = None) -> RunConfig:
    """``config`` when it exists, else the defaults (the commands that default to params.yaml,
    which only a run writes), with ``overrides`` applied."""
    return load_config(config if config and config.exists() else None, overrides or [])
