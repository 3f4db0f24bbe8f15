"""``photogenic dashboards``: the ZenML dashboard and the MLflow UI on 127.0.0.1.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

app = typer.Typer()  # its command joins the root app (photogenic.cli.app)


@app.command("dashboards")
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
