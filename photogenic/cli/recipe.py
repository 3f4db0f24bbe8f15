"""Commands that make the data and run the recipe: the sample pool, a pipeline on ZenML, one stage
as a plain process (what dvc.yaml calls), the resolved config, and retraining when inputs changed.

Every command imports what it needs when it runs: `photogenic --help` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from photogenic.cli.options import ConfigOption, QuietOption, SetOption

app = typer.Typer()  # its commands join the root app (photogenic.cli.app)


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
    ray_job: Annotated[str, typer.Option(metavar="IMAGE", help="Run the data-plane stages as KubeRay RayJobs of "
                                         "this image (the project's), on the cluster of the pod's service account "
                                         "or the kubeconfig's context; needs an object-store DVC remote.")] = "",
) -> None:
    """Run a pipeline with ZenML on the active stack (the local one by default)."""
    from photogenic.config import load_config
    from photogenic.runtime import prepare_environment

    cfg = load_config(config, set_ or [])
    prepare_environment()
    from pipelines.run import run_pipeline  # imports ZenML: only when a pipeline runs

    summary = run_pipeline(pipeline, cfg, config_path=config, progress=not quiet, cache=cache,
                           zenml_config=zenml_config, ray_job=ray_job)
    typer.echo(summary)


@app.command("step")
def step(
    name: Annotated[str, typer.Argument(help="Stage to run, e.g. ingest.")],
    config: ConfigOption = Path("params.yaml"),
    set_: SetOption = None,
    quiet: QuietOption = False,
    resume: Annotated[bool, typer.Option(help="Training stages: continue from the last checkpoint.")] = False,
    lineage_file: Annotated[Optional[Path], typer.Option(
        help="Training stages: the run's lineage a pipeline runner hands the processes it launches (JSON: "
        "input_dvc_md5, lineage_tags, zenml_run_id).")] = None,
) -> None:
    """Run one stage as a plain process, then its quality gate (what dvc.yaml stages call)."""
    from photogenic.config import load_config
    from photogenic.errors import ConfigError
    from photogenic.stages.registry import get_stage
    from photogenic.stages.runner import check_output, run_stage

    cfg = load_config(config, set_ or [])
    if resume and not get_stage(name).resumable:
        raise ConfigError(f"Stage {name!r} does not resume from checkpoints; run it without --resume.")
    options = json.loads(lineage_file.read_text(encoding="utf-8")) if lineage_file else {}
    if resume:
        options["resume"] = True
    output = run_stage(name, cfg, progress=not quiet, **options)
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


@app.command("retrain")
def retrain(
    config: ConfigOption = Path("configs/default.yaml"),
    set_: SetOption = None,
    model: Annotated[str, typer.Option(help="Registered model to compare with.")] = "photogenic-t2i",
    alias: Annotated[str, typer.Option(help="Its alias for the model in service.")] = "champion",
    pipeline: Annotated[Optional[str], typer.Option(help="Pipeline to run (default: the whole recipe).")] = None,
    force: Annotated[bool, typer.Option(help="Run even when nothing changed.")] = False,
    quiet: QuietOption = False,
) -> None:
    """Rerun the recipe only when the sources or annotation exports changed since the champion."""
    from photogenic.config import load_config
    from photogenic.lineage.retrain import retrain_decision
    from photogenic.runtime import prepare_environment
    from photogenic.stages.registry import STAGES

    cfg = load_config(config, set_ or [])
    decision = retrain_decision(cfg, STAGES, model, alias)
    typer.echo(decision.message())
    if not decision.changed and not force:
        return
    prepare_environment()
    from pipelines.run import PIPELINES, run_pipeline

    name = pipeline or ("emu" if "emu" in PIPELINES else "data_curation")
    typer.echo(run_pipeline(name, cfg, config_path=config, progress=not quiet))
