"""``photogenic filter``: the auto-filter's thresholds, fitted from people's stage-1 verdicts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from photogenic.cli.options import ConfigOption, QuietOption, SetOption, existing_config

app = typer.Typer(help="The auto-filter: fit its thresholds from people's curation labels.", no_args_is_help=True)


@app.command("sample")
def filter_sample(
    n: Annotated[Optional[int], typer.Option("--n", help="How many images to draw (filter.calibrate.sample).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random draw.")] = 0,
    simulate: Annotated[bool, typer.Option("--simulate", help="SIMULATED annotators label them from the sample "
                                           "pool's ground truth (demo only).")] = False,
    config: ConfigOption = None,
    set_: SetOption = None,
    quiet: QuietOption = False,
) -> None:
    """Export a random sample of the filter's input as stage-1 tasks for people to label, so that
    calibrate sees what the current thresholds reject too (labels of the candidates alone could
    only ever tighten them)."""
    from photogenic.filtering.calibrate import sample_for_labels

    for path in sample_for_labels(existing_config(config, set_), n, seed=seed, simulate=simulate, progress=not quiet):
        typer.echo(path)


@app.command("calibrate")
def filter_calibrate(
    labels: Annotated[Optional[list[Path]], typer.Argument(
        help="Stage-1 Label Studio exports, curation CSVs or stage-1 result.parquet files "
        "(default: the files in filter.calibrate.labels).")] = None,
    target_recall: Annotated[Optional[float], typer.Option(
        "--target-recall", help="Share of what people kept the thresholds must keep (filter.calibrate.target_recall).")] = None,
    config: ConfigOption = None,
    set_: SetOption = None,
    quiet: QuietOption = False,
) -> None:
    """Fit each scorer's threshold to the target recall of what people kept, then the best
    precision; write a config with the fitted thresholds (and their held-out recall and
    precision) and a plot per threshold under filter.calibrate.output."""
    from photogenic.filtering.calibrate import calibrate

    overrides = list(set_ or [])
    if target_recall is not None:
        overrides.append(f"filter.calibrate.target_recall={target_recall}")
    run_config = existing_config(config, overrides)
    given = str(config) if config and config.exists() else None
    result = calibrate(run_config, [str(p) for p in labels] if labels else None, config_path=given, progress=not quiet)
    typer.echo(f"{result.labels} labelled images ({result.fitted_on} fitted, {result.held_out} held out)")
    typer.echo(f"{'threshold':36s} {'configured':>10s} {'fitted':>10s}  held out: recall / precision (configured)")
    for r in result.knobs:
        fitted = f"{r.value:.4g}" if r.fitted and r.value is not None else "as is"
        configured = "off" if r.knob.configured is None else f"{r.knob.configured:.4g}"
        typer.echo(f"{r.knob.path:36s} {configured:>10s} {fitted:>10s}  {r.recall:.3f} / {r.precision:.3f} "
                   f"({r.configured_recall:.3f} / {r.configured_precision:.3f})")
    typer.echo(f"{'all together':36s} {'':>10s} {'':>10s}  {result.recall:.3f} / {result.precision:.3f} "
               f"({result.configured_recall:.3f} / {result.configured_precision:.3f})")
    for what, path in result.files.items():
        typer.echo(f"  {what}: {path}")
    if "config" in result.files:
        typer.echo(f"next run with the fitted thresholds: photogenic run --config {result.files['config']}")
