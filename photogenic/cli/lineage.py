"""``photogenic lineage``: which data made which model, and where a sample went.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from photogenic.cli.options import ConfigOption, JsonOption, existing_config

app = typer.Typer(help="Which data made which model, and where a sample went.", no_args_is_help=True)

RemoteOption = Annotated[Optional[str], typer.Option(
    "--remote", help="The DVC remote the cluster's tasks pushed to (s3://bucket/dvc): their version records and "
    "manifests are read there. Default: $DVC_REMOTE_URL.")]


@app.command("model")
def lineage_model(
    spec: Annotated[str, typer.Argument(help="NAME, NAME@VERSION or NAME@ALIAS (e.g. photogenic-t2i@champion).")],
    config: ConfigOption = Path("params.yaml"),
    remote: RemoteOption = None,
    as_json: JsonOption = False,
) -> None:
    """A model version's chain: runs, every dataset version (DVC md5), sources, annotation exports, commit."""
    from photogenic.kfp.environment import dvc_remote
    from photogenic.lineage.format import format_model_lineage
    from photogenic.lineage.query import model_lineage

    cfg = existing_config(config)
    result = model_lineage(spec, cfg.data.root, remote=dvc_remote(remote or "") or None)
    typer.echo(json.dumps(result, indent=2) if as_json else format_model_lineage(result))


@app.command("sample")
def lineage_sample(
    sample_id: Annotated[str, typer.Argument(help="The sample's id (sha256 of its image bytes).")],
    config: ConfigOption = Path("params.yaml"),
    remote: RemoteOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every dataset version and model version a sample went into (for a data deletion request)."""
    from photogenic.kfp.environment import dvc_remote
    from photogenic.lineage.format import format_sample_lineage
    from photogenic.lineage.query import sample_lineage

    cfg = existing_config(config)
    result = sample_lineage(sample_id, cfg.data.root, remote=dvc_remote(remote or "") or None)
    typer.echo(json.dumps(result, indent=2) if as_json else format_sample_lineage(result))
