"""Running a pipeline on the active ZenML stack, as ``photogenic run`` does."""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import inspect
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zenml.client import Client

from photogenic.config import RunConfig
from photogenic.errors import ConfigError, PhotogenicError
from photogenic.evaluation.evaluate import headline_lines
from photogenic.evaluation.results import read_results
from photogenic.training.artifact import ensure_model
from photogenic.versioning.dvc import commit_stage, locked_md5, require_project, write_params
from photogenic.versioning.restore import ensure_dataset
from pipelines.data_curation import data_curation
from pipelines.emu import emu
from pipelines.evaluation import evaluation
from pipelines.tracking import ensure_mlflow_stack
from pipelines.training import training
from steps.metadata import log_metadata

PIPELINES = {"emu": emu, "data_curation": data_curation, "training": training, "evaluation": evaluation}
#: the training steps' outputs (photogenic.training.artifact.TrainedModel)
MODEL_OUTPUTS = ("pretrained_model", "quality_tuned_model")
#: pipelines with data-plane stages: they take ``ray_job``
RAY_JOB_PIPELINES = tuple(name for name, pipeline in PIPELINES.items()
                          if "ray_job" in inspect.signature(pipeline.entrypoint).parameters)
#: pipelines whose steps log into ZenML's MLflow experiment tracker
TRACKED = {"emu", "training", "evaluation"}


def run_pipeline(name: str, config: RunConfig, config_path: Path | None = None, progress: bool = True,
                 cache: bool = True, zenml_config: Path | None = None, ray_job: str = "") -> str:
    """Run pipeline ``name`` with ``config``; return a summary of what it produced and where.

    Steps are cached (``cache=False`` runs every one): a rerun with nothing changed skips them
    all, and the datasets the cached steps refer to are then restored from DVC where missing (the
    models from the MLflow runs that logged them).
    ``zenml_config``: a ZenML run configuration (e.g. infra/zenml/kubeflow-run.yaml: the parent
    image and orchestrator settings for a cluster stack).
    ``ray_job``: a container image (the project's); the data-plane stages then run as KubeRay
    RayJobs of it, on the cluster the Kubernetes client reaches (photogenic.kfp.rayjob_stage)."""
    if name not in PIPELINES:
        raise ConfigError(f"Unknown pipeline {name!r}; the pipelines are: {', '.join(PIPELINES)}.")
    if ray_job and name not in RAY_JOB_PIPELINES:
        raise ConfigError(f"--ray-job: pipeline {name} runs no data-plane stage; the pipelines that do: "
                          f"{', '.join(RAY_JOB_PIPELINES)}.")
    resolved = config.resolved()
    if config.dvc.enabled:
        # dvc.yaml reads its params (and output paths) from params.yaml: keep it the config we run
        write_params(require_project("."), resolved)
    _ensure_zenml_repository(Path.cwd())
    if name in TRACKED:
        ensure_mlflow_stack(config)
    run_name = f"{name}-{dt.datetime.now().strftime('%Y%m%d-%H%M%S-%f')}"
    try:
        options = {"config_path": str(zenml_config)} if zenml_config else {}
        with _mlflow_tracking_uri_kept():
            run = PIPELINES[name].with_options(run_name=run_name, enable_cache=cache, **options)(
                config=resolved, progress=progress, **({"ray_job": ray_job} if ray_job else {}))
    except RuntimeError:
        _raise_user_error(run_name)
        raise
    finally:
        # the resolved config goes on the run, failed ones included (a run that never started
        # has nothing to carry it, and must not hide the error that stopped it)
        with contextlib.suppress(KeyError):
            log_metadata(metadata={"config": resolved, "config_file": str(config_path or "")},
                         run_id_name_or_prefix=run_name)
    run = Client().get_pipeline_run(run.id)  # the stored run, with every step's status and outputs
    products = _products(run)
    return _summary(run, products, _restore_outputs(products))


@contextlib.contextmanager
def _mlflow_tracking_uri_kept():
    """ZenML's MLflow tracker blanks the tracking URI (the process's and $MLFLOW_TRACKING_URI)
    after each step; what runs after the pipeline in this process (restoring models from their
    MLflow runs, the lineage commands, tests) must find the store the user set."""
    before = os.environ.get("MLFLOW_TRACKING_URI")
    try:
        yield
    finally:
        import mlflow

        mlflow.set_tracking_uri(None)  # the process's URI: back to following the environment
        if before is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = before


@dataclass
class _Products:
    """What a finished run's steps returned, each artifact loaded from the store once."""
    datasets: list[tuple[str, Any]] = field(default_factory=list)  # (stage, DatasetRef)
    models: list[Any] = field(default_factory=list)  # TrainedModel
    evaluations: list[Any] = field(default_factory=list)  # DatasetRef
    promotions: list[dict] = field(default_factory=list)


def _products(run) -> _Products:
    products = _Products()
    for step_run in run.steps.values():
        for name in MODEL_OUTPUTS:
            products.models += [artifact.load() for artifact in step_run.outputs.get(name, [])]
        products.datasets += [(step_run.config.parameters["stage"], artifact.load())
                              for artifact in step_run.outputs.get("versioned_dataset", [])]
        products.evaluations += [artifact.load() for artifact in step_run.outputs.get("evaluation", [])]
        products.promotions += [artifact.load() for artifact in step_run.outputs.get("promotion", [])]
    return products


def _restore_outputs(products: _Products) -> list[str]:
    """Leave every dataset the run refers to on disk, as a run that executed would have.

    A cached step does not write its dataset; if the folder is missing or holds another version,
    that version is restored from DVC, and dvc.lock is brought back to it (the params.yaml just
    written describes it)."""

    restored = [f"model {model.name}" for model in products.models if ensure_model(model) == "restored"]
    for stage, ref in products.datasets:
        if not ref.dvc_md5:
            continue
        if ensure_dataset(ref) == "restored":
            restored.append(ref.name)
        project = require_project(".")
        if locked_md5(project, str(Path(ref.path).resolve().relative_to(project))) != ref.dvc_md5:
            commit_stage(project, stage, push=False)
    return restored


def _raise_user_error(run_name: str) -> None:
    """ZenML reports a failed step generically. When the step failed on input the user controls
    (a quality gate, a bad path, bad data), raise that error with its own one-paragraph message,
    so `photogenic run` ends as the plain runners do, not with an orchestrator traceback."""
    run = Client().get_pipeline_run(run_name)
    for step_name, step_run in run.steps.items():
        if step_run.status.value != "failed":
            continue
        error_type = _user_error_type(step_run.exception_info)
        if error_type is not None:
            raise error_type(f"{step_run.exception_info.message} (step {step_name} of run {run_name})")


def _user_error_type(info) -> type[PhotogenicError] | None:
    if info is None or not info.source or "." not in info.source:
        return None
    module, _, name = info.source.rpartition(".")
    try:
        error_type = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None
    return error_type if isinstance(error_type, type) and issubclass(error_type, PhotogenicError) else None


def _ensure_zenml_repository(root: Path) -> None:
    """``zenml init`` once, so ZenML resolves step sources relative to the project."""
    if not (root / ".zen").is_dir():
        Client.initialize(root=root)


def _model_lines(products: _Products) -> list[str]:
    """The training chain's products: the models, the evaluation's headline, the promotion."""
    lines = []
    for model in products.models:
        version = f"{model.registered_model} version {model.model_version}" if model.model_version else "unregistered"
        lines.append(f"  model {model.name}: {version}, at {model.path}")
    for ref in products.evaluations:
        with contextlib.suppress(OSError, ValueError, KeyError):
            lines += [f"  {line}" for line in headline_lines(read_results(ref.path))]
            lines.append(f"  evaluation report: {ref.path}/report.html")
    for decision in products.promotions:
        lines.append(f"  promotion: {'PROMOTED' if decision.get('promoted') else 'not promoted'}: "
                     f"{decision.get('reason', '')}")
    return lines


def _summary(run, products: _Products, restored: list[str] = ()) -> str:
    cached = [name for name, step_run in run.steps.items() if step_run.status.value == "cached"]
    lines = [f"ZenML run {run.name} ({run.id}): {run.status.value}, "
             f"{len(cached)} of {len(run.steps)} steps cached"]
    lines += [f"  {name} restored from its MLflow run (its step was cached)" if name.startswith("model ")
              else f"  dataset {name} restored from DVC (its step was cached)" for name in restored]
    gate_reports = [
        step_run.run_metadata["quality_gate"].get("docs_index")
        for step_run in run.steps.values() if "quality_gate" in step_run.run_metadata
    ]
    for _, ref in products.datasets:
        lines += [
            f"  dataset {ref.name}: {ref.rows} rows, {ref.quarantined} quarantined, at {ref.path}",
            f"    DVC md5 {ref.dvc_md5 or 'not versioned (dvc.enabled=false)'}"
            + ("; restore with `dvc pull`" if ref.dvc_md5 else ""),
        ]
    lines += [f"  quality gate report: {path}" for path in gate_reports if path]
    lines += _model_lines(products)
    lines.append("  browse runs: `zenml login --local` (needs zenml[server]); versions: `photogenic data ls`")
    return "\n".join(lines)
