"""``photogenic data``: the dataset versions the project knows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from photogenic.cli.options import ConfigOption, SetOption, existing_config

app = typer.Typer(help="Datasets the project knows.", no_args_is_help=True)


@app.command("ls")
def data_ls(
    config: ConfigOption = Path("params.yaml"),
    set_: SetOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List the dataset versions the project knows: DVC md5, rows, and the run that made them."""
    from photogenic.versioning.catalog import catalog, format_catalog

    cfg = existing_config(config, set_)
    rows = catalog(cfg.data.root)
    typer.echo(json.dumps(rows, indent=2) if as_json else format_catalog(rows))
