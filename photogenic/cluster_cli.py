"""``photogenic kfp``, ``photogenic lineage``, ``photogenic retrain`` and ``photogenic dashboards``:
the commands that run the recipe where its users run it and audit what it made. Registered on
the main app by photogenic.cli (options as there: every import heavy is done inside a command).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from photogenic.errors import ConfigError

# the same options photogenic.cli offers its commands
ConfigOption = Annotated[
    Optional[Path], typer.Option("--config", "-c", help="Run config (YAML). Defaults apply where it is silent.")
]
SetOption = Annotated[
    Optional[list[str]],
    typer.Option("--set", "-s", help="Override a config value: section.key=value (repeatable)."),
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]


# -- Kubeflow Pipelines ---------------------------------------------------------------------------
kfp_app = typer.Typer(help="The recipe as a native Kubeflow Pipelines pipeline.", no_args_is_help=True)

HostOption = Annotated[str, typer.Option(help="Kubeflow Pipelines API endpoint (https://.../pipeline); "
                                         "authentication from the environment, as kfp.Client reads it.")]
ImageOption = Annotated[str, typer.Option(help="The project image the steps run (infra/docker/Dockerfile).")]


def _kfp_client(host: str):
    """kfp.Client for ``host``; a server that cannot be reached is a user error, not a traceback."""
    import kfp

    try:
        return kfp.Client(host=host)
    except Exception as exc:  # kfp raises urllib3/HTTP errors of many kinds here
        raise ConfigError(f"Cannot reach Kubeflow Pipelines at {host}: {exc.__class__.__name__}: {exc}. "
                          "Check --host and your credentials (kfp.Client reads them from the environment).") from None


def _kfp_options(image: str, stages: Optional[list[str]]):
    from photogenic.kfp.pipeline import KfpOptions

    return KfpOptions(image=image, stages=tuple(stages) if stages else None)


@kfp_app.command("compile")
def kfp_compile(
    out: Annotated[Path, typer.Option(help="Pipeline package (IR YAML) to write.")] = Path("photogenic-pipeline.yaml"),
    config: ConfigOption = Path("configs/default.yaml"),
    set_: SetOption = None,
    image: ImageOption = "photogenic:latest",
    stage: Annotated[Optional[list[str]], typer.Option(help="Only these stages (repeatable).")] = None,
) -> None:
    """Compile the pipeline (one task per declared stage, wired by this config's dataset names)."""
    from photogenic.config import load_config
    from photogenic.kfp.pipeline import compile_pipeline

    compile_pipeline(load_config(config, set_ or []), str(out), _kfp_options(image, stage))
    typer.echo(f"Compiled the pipeline to {out}")


@kfp_app.command("upload")
def kfp_upload(
    host: HostOption,
    package: Annotated[Path, typer.Option(help="A package from `photogenic kfp compile`.")] = Path(
        "photogenic-pipeline.yaml"),
    name: Annotated[str, typer.Option(help="Pipeline name in the KFP UI.")] = "photogenic",
    version: Annotated[Optional[str], typer.Option(help="Version name (default: time + git commit).")] = None,
) -> None:
    """Create the pipeline on the server, or add a version to it (then "Create run" offers it)."""
    from photogenic.kfp.client import upload

    result = upload(_kfp_client(host), str(package), name, version_name=version)
    typer.echo(json.dumps(result))


@kfp_app.command("schedule")
def kfp_schedule(
    host: HostOption,
    cron: Annotated[str, typer.Option(help="6-field cron, seconds first: '0 0 3 * * *' is 03:00 daily.")],
    name: Annotated[str, typer.Option(help="Pipeline name in the KFP UI.")] = "photogenic",
    job_name: Annotated[str, typer.Option(help="Recurring run name.")] = "photogenic-retrain",
    experiment: Annotated[str, typer.Option(help="KFP experiment.")] = "photogenic",
    param: Annotated[Optional[list[str]], typer.Option(help="Run parameter name=value (JSON values), repeatable.")] = None,
) -> None:
    """Create a recurring run of the latest pipeline version (no catch-up, one run at a time)."""
    from photogenic.kfp.client import check_cron, schedule

    check_cron(cron)
    params = {}
    for item in param or []:
        key, _, value = item.partition("=")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    result = schedule(_kfp_client(host), name, cron, job_name, params=params, experiment=experiment)
    typer.echo(json.dumps(result))


# -- lineage and scheduled retraining ----------------------------------------------------------------
lineage_app = typer.Typer(help="Which data made which model, and where a sample went.", no_args_is_help=True)
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


@lineage_app.command("model")
def lineage_model(
    spec: Annotated[str, typer.Argument(help="NAME, NAME@VERSION or NAME@ALIAS (e.g. photogenic-t2i@champion).")],
    config: ConfigOption = Path("params.yaml"),
    as_json: JsonOption = False,
) -> None:
    """A model version's chain: runs, every dataset version (DVC md5), sources, annotation exports, commit."""
    from photogenic.config import load_config
    from photogenic.lineage.format import format_model_lineage
    from photogenic.lineage.query import model_lineage

    cfg = load_config(config if config and config.exists() else None)
    result = model_lineage(spec, cfg.data.root)
    typer.echo(json.dumps(result, indent=2) if as_json else format_model_lineage(result))


@lineage_app.command("sample")
def lineage_sample(
    sample_id: Annotated[str, typer.Argument(help="The sample's id (sha256 of its image bytes).")],
    config: ConfigOption = Path("params.yaml"),
    as_json: JsonOption = False,
) -> None:
    """Every dataset version and model version a sample went into (for a data deletion request)."""
    from photogenic.config import load_config
    from photogenic.lineage.format import format_sample_lineage
    from photogenic.lineage.query import sample_lineage

    cfg = load_config(config if config and config.exists() else None)
    result = sample_lineage(sample_id, cfg.data.root)
    typer.echo(json.dumps(result, indent=2) if as_json else format_sample_lineage(result))


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

    cfg = load_config(config, set_ or [])
    decision = retrain_decision(cfg, model, alias)
    typer.echo(decision.message())
    if not decision.changed and not force:
        return
    prepare_environment()
    from pipelines.run import PIPELINES, run_pipeline

    name = pipeline or ("emu" if "emu" in PIPELINES else "data_curation")
    typer.echo(run_pipeline(name, cfg, config_path=config, progress=not quiet))


def dashboards(
    zenml_port: Annotated[int, typer.Option(help="Port of the ZenML dashboard.")] = 8237,
    mlflow_port: Annotated[int, typer.Option(help="Port of the MLflow UI.")] = 5000,
    tracking_uri: Annotated[Optional[str], typer.Option(help="MLflow store (default: MLflow's, from "
                                                        "MLFLOW_TRACKING_URI).")] = None,
) -> None:
    """Serve the ZenML dashboard and the MLflow UI on 127.0.0.1 until Ctrl-C."""
    import mlflow

    from photogenic.dashboards import start_mlflow_ui, start_zenml_dashboard, stop_zenml_dashboard
    from photogenic.runtime import prepare_environment

    prepare_environment()
    zenml_url = start_zenml_dashboard(zenml_port)
    process, mlflow_url = start_mlflow_ui(tracking_uri or mlflow.get_tracking_uri(), mlflow_port)
    typer.echo(f"ZenML dashboard: {zenml_url}\nMLflow UI:       {mlflow_url}\nCtrl-C stops both.")
    try:
        process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        process.terminate()
        stop_zenml_dashboard()



def register_cluster_commands(app: typer.Typer) -> None:
    app.add_typer(kfp_app, name="kfp")
    app.add_typer(lineage_app, name="lineage")
    app.command("retrain")(retrain)
    app.command("dashboards")(dashboards)
