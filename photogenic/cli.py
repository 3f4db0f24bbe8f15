"""The ``photogenic`` command line.

Errors the user can cause (bad config, bad path, failed quality gate) end with a one-paragraph
message and a non-zero exit code, not a traceback.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from photogenic.errors import PhotogenicError

app = typer.Typer(
    help="photogenic: curate photogenic images from a large image–text pool and quality-tune a "
    "text-to-image diffusion model on them (the Emu recipe).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(help="Datasets the project knows.", no_args_is_help=True)
app.add_typer(data_app, name="data")

ConfigOption = Annotated[
    Optional[Path], typer.Option("--config", "-c", help="Run config (YAML). Defaults apply where it is silent.")
]
SetOption = Annotated[
    Optional[list[str]],
    typer.Option("--set", "-s", help="Override a config value: section.key=value (repeatable)."),
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]


@app.command("sample-pool")
def sample_pool(
    out: Annotated[Path, typer.Option(help="Folder to write the shards to.")] = Path("data/raw/sample-pool"),
    n: Annotated[int, typer.Option(help="Number of samples.")] = 4000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives byte-identical shards.")] = 0,
    shard_size: Annotated[int, typer.Option(help="Samples per tar shard.")] = 1000,
    workers: Annotated[Optional[int], typer.Option(help="Worker processes (default: up to 2).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a different pool already in --out.")] = False,
    quiet: QuietOption = False,
) -> None:
    """Write the embedded synthetic image–text pool as img2dataset-style WebDataset shards."""
    from photogenic.samplepool import generate_sample_pool

    summary = generate_sample_pool(
        out, n=n, seed=seed, shard_size=shard_size, workers=workers, progress=not quiet, overwrite=overwrite
    )
    typer.echo(
        f"Sample pool: {summary.n} samples in {len(summary.shards)} shards under {out} "
        f"({summary.photogenic} photogenic by construction, {summary.seconds:.1f} s)."
    )


@app.command("run")
def run(
    config: ConfigOption = Path("configs/default.yaml"),
    set_: SetOption = None,
    pipeline: Annotated[str, typer.Option(help="Pipeline to run.")] = "data_curation",
    quiet: QuietOption = False,
) -> None:
    """Run a pipeline with ZenML on the active stack (the local one by default)."""
    from photogenic.config import load_config
    from photogenic.runtime import prepare_environment

    cfg = load_config(config, set_ or [])
    prepare_environment()
    from pipelines.run import run_pipeline  # imports ZenML: only when a pipeline runs

    summary = run_pipeline(pipeline, cfg, config_path=config, progress=not quiet)
    typer.echo(summary)


@app.command("step")
def step(
    name: Annotated[str, typer.Argument(help="Stage to run, e.g. ingest.")],
    config: ConfigOption = Path("params.yaml"),
    set_: SetOption = None,
    quiet: QuietOption = False,
    resume: Annotated[bool, typer.Option(help="Training stages: continue from the last checkpoint.")] = False,
) -> None:
    """Run one stage as a plain process, then its quality gate (what dvc.yaml stages call)."""
    from photogenic.config import load_config
    from photogenic.errors import ConfigError
    from photogenic.stages.registry import get_stage
    from photogenic.stages.runner import check_output, run_stage

    cfg = load_config(config, set_ or [])
    if resume and not get_stage(name).resumable:
        raise ConfigError(f"Stage {name!r} does not resume from checkpoints; run it without --resume.")
    output = run_stage(name, cfg, progress=not quiet, **({"resume": True} if resume else {}))
    if output.ref is None:  # a training stage: its product is a model
        typer.echo(f"{name}: model {output.model}; summary {output.stats.get('summary_path')}")
        typer.echo(f"{name}: MLflow run {output.stats.get('mlflow_run_id')}, registered "
                   f"{output.stats.get('registered_model')} version {output.stats.get('model_version')}")
        for report, path in output.reports.items():
            typer.echo(f"{name}: {report} {path}")
        return
    gate = check_output(name, output.ref, cfg)
    typer.echo(f"{name}: {output.ref.rows} rows, {output.ref.quarantined} quarantined → {output.ref.path}")
    typer.echo(f"{name}: counts {json.dumps(output.stats)}")
    if gate is not None:
        typer.echo(f"{name}: quality gate passed ({gate.docs_index})")


@app.command("config")
def show_config(config: ConfigOption = Path("configs/default.yaml"), set_: SetOption = None) -> None:
    """Print the resolved config (defaults filled in, overrides applied)."""
    from photogenic.config import dump_config, load_config

    typer.echo(dump_config(load_config(config, set_ or [])), nl=False)


@data_app.command("ls")
def data_ls(
    config: ConfigOption = Path("params.yaml"),
    set_: SetOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List the dataset versions the project knows: DVC md5, rows, and the run that made them."""
    from photogenic.config import load_config
    from photogenic.versioning.catalog import catalog, format_catalog

    cfg = load_config(config if config and config.exists() else None, set_ or [])
    rows = catalog(cfg.data.root)
    typer.echo(json.dumps(rows, indent=2) if as_json else format_catalog(rows))


def main() -> None:
    # only photogenic's own loggers: ZenML, DVC and GE print through their own handlers, and a
    # root handler here would print their lines twice
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("photogenic")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        app()
    except PhotogenicError as exc:
        typer.secho(f"Error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
