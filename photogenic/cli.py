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

from photogenic.errors import NO_SPACE, PhotogenicError, StorageError
from photogenic.exiting import exit_now
from photogenic.safety.secrets import RedactingFilter

app = typer.Typer(
    help="photogenic: curate photogenic images from a large image–text pool and quality-tune a "
    "text-to-image diffusion model on them (the Emu recipe).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(help="Datasets the project knows.", no_args_is_help=True)
app.add_typer(data_app, name="data")
curation_app = typer.Typer(help="Human curation: export tasks, import annotations, simulated annotators.",
                           no_args_is_help=True)
app.add_typer(curation_app, name="curation")

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
    pipeline: Annotated[str, typer.Option(help="Pipeline to run: emu (the whole recipe), data_curation, training, evaluation.")] = "emu",
    quiet: QuietOption = False,
    cache: Annotated[bool, typer.Option("--cache/--no-cache", help="Reuse steps whose code, config and "
                                        "input md5s are unchanged.")] = True,
    zenml_config: Annotated[Optional[Path], typer.Option(help="ZenML run configuration for the stack, e.g. "
                                                         "infra/zenml/kubeflow-run.yaml.")] = None,
) -> None:
    """Run a pipeline with ZenML on the active stack (the local one by default)."""
    from photogenic.config import load_config
    from photogenic.runtime import prepare_environment

    cfg = load_config(config, set_ or [])
    prepare_environment()
    from pipelines.run import run_pipeline  # imports ZenML: only when a pipeline runs

    summary = run_pipeline(pipeline, cfg, config_path=config, progress=not quiet, cache=cache,
                           zenml_config=zenml_config)
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
        from photogenic.training.distributed import is_main_process

        if not is_main_process():  # under DDP the main process reports for all
            return
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


StageOption = Annotated[int, typer.Option("--stage", help="Curation stage: 1 (generalists) or 2 (specialists).")]


@curation_app.command("export")
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


@curation_app.command("import")
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


@curation_app.command("simulate")
def curation_simulate(stage: StageOption, config: ConfigOption = Path("params.yaml"), set_: SetOption = None) -> None:
    """SIMULATED annotators: write Label Studio exports for a stage's tasks from the sample pool's
    hidden ground truth (demo and benchmarks only; never mistaken for people's labels)."""
    from photogenic.config import load_config
    from photogenic.curation.simulate import simulate_stage

    for path in simulate_stage(load_config(config, set_ or []), stage):
        typer.echo(f"SIMULATED export: {path}")
# -- evaluation ----------------------------------------------------------------------------------

evaluate_app = typer.Typer(help="Pairwise evaluation of two models, human ratings, the promotion gate.",
                           no_args_is_help=True)
app.add_typer(evaluate_app, name="evaluate")


def _evaluation_folder(cfg) -> str:
    from photogenic.paths import dataset_dir

    return dataset_dir(cfg.data.root, cfg.evaluate.output)


@evaluate_app.command("compare")
def evaluate_compare(
    candidate: Annotated[str, typer.Argument(help="Model A: a diffusers pipeline folder or models:/name/version.")],
    baseline: Annotated[str, typer.Argument(help="Model B, the same forms.")],
    config: ConfigOption = Path("configs/default.yaml"),
    set_: SetOption = None,
    quiet: QuietOption = False,
) -> None:
    """Sample both models on the prompt set, judge, and print the win rates of A over B."""
    from photogenic.config import load_config
    from photogenic.evaluation.evaluate import headline_lines, run_evaluation

    cfg = load_config(config if config and config.exists() else None, set_ or [])
    result = run_evaluation(cfg, candidate=candidate, baseline=baseline, progress=not quiet)
    for line in headline_lines(result.results):
        typer.echo(line)
    typer.echo(f"results: {result.results_path}\nreport: {result.report}")


@evaluate_app.command("prompts")
def evaluate_prompts(
    out: Annotated[Path, typer.Option(help="TSV file to write.")] = Path("data/prompts/sample_world.tsv"),
    n: Annotated[int, typer.Option(help="Number of prompts.")] = 180,
    seed: Annotated[int, typer.Option(help="Seed of the held-out scene stream.")] = 0,
    pool_n: Annotated[int, typer.Option(help="Size of the training pool whose captions are held out.")] = 4000,
    pool_seed: Annotated[int, typer.Option(help="Seed of that pool.")] = 0,
) -> None:
    """Write the sample world's held-out evaluation prompts (scenes no training caption describes)."""
    from photogenic.evaluation.prompts import write_prompts
    from photogenic.evaluation.world_prompts import sample_world_prompts

    prompts = sample_world_prompts(n, seed=seed, pool_n=pool_n, pool_seed=pool_seed)
    write_prompts(str(out), prompts)
    typer.echo(f"{len(prompts)} prompts -> {out}")


@evaluate_app.command("export-human")
def evaluate_export_human(
    config: ConfigOption = Path("params.yaml"),
    set_: SetOption = None,
    max_pairs: Annotated[Optional[int], typer.Option(help="Export only the first N pairs.")] = None,
) -> None:
    """Export the last evaluation's pairs for human raters: Label Studio tasks + configs, rating pages."""
    from photogenic.config import load_config
    from photogenic.evaluation.human import export_human

    cfg = load_config(config if config and config.exists() else None, set_ or [])
    export = export_human(_evaluation_folder(cfg), seed=cfg.evaluate.seed, max_pairs=max_pairs)
    typer.echo(f"{export.pairs} pairs (export {export.export_id}) -> {export.folder}: tasks.json, "
               "visual_appeal.xml, text_faithfulness.xml, rate_visual_appeal.html, rate_text_faithfulness.html")


@evaluate_app.command("import-human")
def evaluate_import_human(
    files: Annotated[list[Path], typer.Argument(help="Label Studio JSON exports and/or rating-page downloads.")],
    config: ConfigOption = Path("params.yaml"),
    set_: SetOption = None,
) -> None:
    """Import raters' votes, take the majority per pair, and print the human win rates."""
    from photogenic.config import load_config
    from photogenic.evaluation.human import record_human_results

    cfg = load_config(config if config and config.exists() else None, set_ or [])
    human = record_human_results(_evaluation_folder(cfg), [str(f) for f in files], n_boot=cfg.evaluate.bootstrap,
                                 level=cfg.evaluate.level, seed=cfg.evaluate.seed)
    for row in human["win_rates"]:
        typer.echo(f"{row['judge']} [{row['category']}]: win rate {row['win_rate']:.3f} "
                   f"[{row['ci_low']:.3f}, {row['ci_high']:.3f}] n={row['n']} p={row['p_value']:.3g}")


@evaluate_app.command("promote")
def evaluate_promote(
    config: ConfigOption = Path("params.yaml"),
    set_: SetOption = None,
    version: Annotated[Optional[str], typer.Option(help="Candidate version (default: from the evaluation).")] = None,
) -> None:
    """Apply the promotion gate to the last evaluation's results."""
    from photogenic.config import load_config
    from photogenic.evaluation.evaluate import read_results
    from photogenic.evaluation.promotion import promote

    cfg = load_config(config if config and config.exists() else None, set_ or [])
    decision = promote(read_results(_evaluation_folder(cfg)), cfg.evaluate.promotion, candidate_version=version)
    verdict = "PROMOTED to @" + decision.alias if decision.promoted else "refused"
    typer.echo(f"{decision.registered_model} v{decision.version}: {verdict}: {decision.reason}")


# -- the cluster runners, lineage, scheduled retraining and dashboards: photogenic/cluster_cli.py
from photogenic.cluster_cli import register_cluster_commands  # noqa: E402 - after the app exists

register_cluster_commands(app)


def main() -> None:
    # only photogenic's own loggers: ZenML, DVC and GE print through their own handlers, and a
    # root handler here would print their lines twice
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())  # no URI's user:password@ reaches a terminal or a CI log
    logger = logging.getLogger("photogenic")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        app()
    except PhotogenicError as exc:
        typer.secho(f"Error: {exc}", fg=typer.colors.RED, err=True)
        # the message is the whole outcome of a user error (pyarrow's pool aborted here once,
        # after a failed import of an annotation file, turning exit code 2 into a SIGABRT)
        exit_now(exc.exit_code)
    except OSError as exc:
        if exc.errno not in NO_SPACE:
            raise
        # a full disk outside the dataset layer (which says which version is intact): a checkpoint, a report
        typer.secho(f"Error: no space left on the device ({exc}). Free space and run again.", fg=typer.colors.RED,
                    err=True)
        exit_now(StorageError.exit_code)


if __name__ == "__main__":
    main()
