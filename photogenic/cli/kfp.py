"""``photogenic kfp``: the recipe as a native Kubeflow Pipelines pipeline: compile, upload,
schedule.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from photogenic.cli.options import ConfigOption, SetOption
from photogenic.errors import ConfigError
from photogenic.kfp.environment import CONFIG_MAP_NAME, SECRET_NAME

app = typer.Typer(help="The recipe as a native Kubeflow Pipelines pipeline.", no_args_is_help=True)

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


@app.command("compile")
def kfp_compile(
    out: Annotated[Path, typer.Option(help="Pipeline package (IR YAML) to write.")] = Path("photogenic-pipeline.yaml"),
    config: ConfigOption = Path("configs/default.yaml"),
    set_: SetOption = None,
    image: ImageOption = "photogenic:latest",
    stage: Annotated[Optional[list[str]], typer.Option(help="Only these stages (repeatable).")] = None,
    secret: Annotated[str, typer.Option(help="The Kubernetes Secret every task takes the object store's "
                                        "credentials from (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY).")] = SECRET_NAME,
    config_map: Annotated[str, typer.Option(help="The ConfigMap every task takes MLFLOW_TRACKING_URI, "
                                            "AWS_ENDPOINT_URL, AWS_DEFAULT_REGION and DVC_REMOTE_URL from.")
                          ] = CONFIG_MAP_NAME,
    ray: Annotated[bool, typer.Option("--ray", help="Run the data-plane stages (ingest, the auto-filter, caption, "
                                      "upsample, package) as KubeRay "
                                      "RayJobs of the image: the task launches one and waits for it.")] = False,
) -> None:
    """Compile the pipeline (one task per declared stage, wired by this config's dataset names)."""
    from photogenic.config import load_config
    from photogenic.kfp.pipeline import KfpOptions, compile_pipeline

    options = KfpOptions(image=image, stages=tuple(stage) if stage else None, secret_name=secret,
                         config_map_name=config_map, ray=ray)
    compile_pipeline(load_config(config, set_ or []), str(out), options)
    typer.echo(f"Compiled the pipeline to {out}")


@app.command("upload")
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


@app.command("schedule")
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
