"""``photogenic curation``: the two human stages by hand: export tasks, import annotations,
SIMULATED annotators.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from photogenic.cli.options import ConfigOption, QuietOption, SetOption

app = typer.Typer(help="Human curation: export tasks, import annotations, simulated annotators.",
                  no_args_is_help=True)

StageOption = Annotated[int, typer.Option("--stage", help="Curation stage: 1 (generalists) or 2 (specialists).")]


@app.command("export")
def curation_export(stage: StageOption, config: ConfigOption = Path("params.yaml"), set_: SetOption = None,
                    quiet: QuietOption = False) -> None:
    """Write a stage's Label Studio tasks, labeling config and CSV under <data.root>/<curation.dir>/."""
    from photogenic.config import load_config
    from photogenic.curation.export import export_stage

    result = export_stage(load_config(config, set_ or []), stage, progress=not quiet)
    typer.echo(f"stage {stage}: {result.tasks} tasks ({result.overlapping} for several annotators): "
               + ", ".join(f"{k} {v}" for k, v in result.per_annotator.items()))
    for what, path in result.files.items():
        typer.echo(f"  {what}: {path}")


@app.command("import")
def curation_import(
    files: Annotated[list[Path], typer.Argument(help="Label Studio JSON exports and/or curation CSVs.")],
    stage: Annotated[Optional[int], typer.Option("--stage", help="Stage; default: read from each file.")] = None,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Quarantine bad rows (with reasons) instead of failing.")] = False,
    config: ConfigOption = Path("params.yaml"),
    set_: SetOption = None,
) -> None:
    """Import annotation exports: checked, added to the stage's annotations, votes and quotas recomputed."""
    from photogenic.config import load_config
    from photogenic.curation.importer import add_exports

    results = add_exports(load_config(config, set_ or []), [str(f) for f in files], stage=stage,
                          skip_bad=skip_bad or None)
    for number, result in results.items():
        kappa = result.verdict_kappa
        typer.echo(f"stage {number}: {json.dumps(result.counts)}; verdict kappa "
                   f"{'n/a' if kappa is None else f'{kappa:.3f}'}")


@app.command("simulate")
def curation_simulate(stage: StageOption, config: ConfigOption = Path("params.yaml"), set_: SetOption = None) -> None:
    """SIMULATED annotators: write Label Studio exports for a stage's tasks from the sample pool's
    hidden ground truth (demo and benchmarks only; never mistaken for people's labels)."""
    from photogenic.config import load_config
    from photogenic.curation.simulate import simulate_stage

    for path in simulate_stage(load_config(config, set_ or []), stage):
        typer.echo(f"SIMULATED export: {path}")
