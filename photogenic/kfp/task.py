"""What every KFP task runs: the check of the run's inputs, or one declared stage between a DVC
pull and a DVC push.

A pod has no git checkout and no data, and shares no disk with the other pods: the image holds
the project (code, dvc.yaml, configs, .dvc/config), the cluster gives it the object store's
credentials, the tracking server and the DVC remote in its environment
(photogenic.kfp.environment). So a stage task turns on DVC's ``core.no_scm``, points the default
remote at the run's, pulls each input dataset by the DVC md5 its upstream task reported (and the
datasets whose shards the input's rows point into), checks that the files it reads from outside
the datasets still have the md5s the run started with, runs ``photogenic step``'s core (stage +
quality gate), commits and pushes the output, records the version in the remote, and reports
``{"stage", "datasets", "carried", "models"}`` for the tasks downstream. Its report holds
content only (md5s, rows, paths relative to the project), so an unchanged rerun gives the same
report and KFP's cache serves the tasks after it.

A training task with ``training.resources.nodes`` above 1 trains nothing itself: it creates a
Kubeflow Trainer job whose every node runs this module again with ``--train-node`` (pull the
inputs, then torchrun joins the other nodes), waits for it, and reads the model back from the
tracking server (photogenic.kfp.trainjob, photogenic.kfp.trainjob_launch).

    python -m photogenic.kfp.task --stage ingest --config-file configs/default.yaml ... --output PATH
    python -m photogenic.kfp.task --check --stages ingest,auto_filter ... --output-changed PATH ...
    python -m photogenic.kfp.task --stage pretrain --train-node ... --training-context JSON

With ``--ray-job IMAGE`` (``photogenic kfp compile --ray``, for the stages on the data plane) the
task does not run the stage in its own pod: it launches the same command as a KubeRay RayJob of
the project image (photogenic.kfp.rayjob), whose driver connects to the job's Ray cluster and
writes its report to the object store, waits for it, and hands that report on.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import posixpath
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from photogenic.config import RunConfig, load_config, value_at
from photogenic.dataset.atomic import read_text, write_text
from photogenic.dataset.ref import DatasetRef
from photogenic.dataset.store import Dataset
from photogenic.errors import ConfigError, DataError
from photogenic.kfp import environment
from photogenic.kfp.parameters import PIPELINE_PARAMETERS, parameter_overrides, parameter_text
from photogenic.kfp.trainjob import job_name, node_command, render_trainjob
from photogenic.kfp.trainjob_launch import (
    TRAINJOB_TAG,
    LaunchSettings,
    current_namespace,
    custom_objects_api,
    submit,
    tracked_run,
    wait,
)
from photogenic.lineage.retrain import retrain_decision
from photogenic.lineage.tags import input_md5s
from photogenic.paths import is_url, model_dir
from photogenic.safety.secrets import redact, redact_output
from photogenic.stages.registry import STAGES, get_stage
from photogenic.stages.runner import check_output, run_stage, stage_config
from photogenic.stages.spec import StageSpec
from photogenic.stages.training import train_node, train_with_lineage, training_context
from photogenic.tracking_server import require_reachable
from photogenic.training.artifact import TrainedModel, ensure_model, model_from_run
from photogenic.training.tracking import configured_uri, use_tracking_store
from photogenic.versioning.dvc import find_project, run_dvc, write_params
from photogenic.versioning.fingerprint import external_md5s
from photogenic.versioning.log import read_versions
from photogenic.versioning.record import version_output, version_untracked
from photogenic.versioning.remote import publish_version
from photogenic.versioning.restore import ensure_dataset

log = logging.getLogger(__name__)


def task_config(stage: str | None, values: dict[str, Any]) -> RunConfig:
    """The run config a task uses: the config file (a path in the image or a URL), then the
    pipeline parameters as overrides (for ``stage``'s sections; every stage's when None)."""
    path = values.get("config_file") or None
    if path and is_url(path):
        local = Path(tempfile.mkdtemp()) / "config.yaml"
        try:
            text = read_text(path)
        except Exception as error:  # each fsspec back end raises its own types (botocore's, gcsfs's, ...)
            raise DataError(redact(f"Could not read the run's config file {path}: {error}")) from error
        local.write_text(text, encoding="utf-8")
        path = str(local)
    sections = get_stage(stage).params if stage else tuple(dict.fromkeys(s for spec in STAGES.values()
                                                                         for s in spec.params))
    return load_config(path, parameter_overrides(values, sections))


# -- the first task: fingerprints and the decision -----------------------------------------------

@dataclass
class Check:
    changed: bool
    reason: str
    #: stage -> its fingerprint (JSON text): the md5 of its config sections and input files
    fingerprints: dict[str, str]


def fingerprint(stage: str, config: RunConfig) -> dict[str, Any]:
    """What ``stage`` will read, as content: its config sections and the md5s of its files from
    outside the datasets. Its md5 is the stage task's cache key (with the upstream md5s)."""
    spec = get_stage(stage)
    inputs = external_md5s(spec, config)
    sections = stage_config(stage, config.resolved())
    text = json.dumps({"config": sections, "inputs": inputs}, sort_keys=True, separators=(",", ":"))
    return {"md5": hashlib.md5(text.encode()).hexdigest(), "inputs": inputs}  # noqa: S324 - a content id


def check_inputs(values: dict[str, Any], stages: list[str]) -> Check:
    prints = {stage: json.dumps(fingerprint(stage, task_config(stage, values)), sort_keys=True) for stage in stages}
    if not values.get("only_if_changed"):
        return Check(True, "every run runs the stages (only_if_changed is false)", prints)
    name, _, alias = str(values.get("champion") or "").partition("@")
    if not name or not alias:
        raise ConfigError(f"champion must be NAME@ALIAS (e.g. photogenic-t2i@champion), got {values.get('champion')!r}.")
    decision = retrain_decision(task_config(None, values), STAGES, name, alias)
    return Check(decision.changed, decision.message(), prints)


# -- a stage task ------------------------------------------------------------------------------------

def run_task(stage: str, values: dict[str, Any], upstream: list[str], expected: str = "",
             node_context: dict | None = None, details: str = "") -> str:
    """Run ``stage`` in this pod; ``expected``: the fingerprint the check task gave it.
    ``node_context``: this pod is a node of the stage's multi-node training job (created by the
    stage's task, ``_train_on_nodes``), told the run's training context; it pulls the inputs as
    the task did, trains its share and reports nothing (the task reads the model back).
    ``details``: a folder (a URL) that also gets the stage's counts and HTML reports
    (``write_details``), for a launcher that records them (photogenic.kfp.rayjob_stage)."""
    spec = get_stage(stage)
    config = task_config(stage, values)
    if spec.tracked:
        require_reachable(configured_uri(config.training.tracking) or "")
    _check_inputs_unchanged(stage, config, expected)
    project = _prepare_dvc(config, environment.dvc_remote(values.get("dvc_remote") or ""))
    if project is not None:
        write_params(project, config.resolved())  # dvc.yaml reads its paths and params here
    produced, models = _read_upstream(upstream, project)
    inputs = _pull_inputs(spec, config, produced, project)
    _hand_models(spec, config, models)
    if node_context is not None:
        if not spec.model_outputs:
            raise ConfigError(f"--train-node: stage {stage} trains no model.")
        train_node(stage, config, node_context)
        return ""
    run = environment.run_identity()
    if spec.model_outputs:
        model = _train(stage, config, next(iter(inputs.values())), run, _task_arguments(values, upstream))
        if project is not None:  # a report names no pod's disk
            model = model.model_copy(update={"path": os.path.relpath(Path(model.path).resolve(), project.resolve())})
        return task_report(stage, {}, {}, {model.name: model.model_dump()}, project)
    output = run_stage(stage, config, progress=False, inputs=inputs)
    check_output(stage, output.ref, config)
    ref = output.ref
    if project is not None and spec.outputs:
        ref = _version(stage, spec, ref, config, {**run, "dataset_version": values.get("dataset_version", "")})
    log.info("%s: %d rows, %d quarantined, DVC md5 %s", stage, ref.rows, ref.quarantined, ref.dvc_md5)
    log.info("%s: %s", stage, json.dumps(output.stats, default=str))
    if details:
        write_details(details, output.stats, output.reports)
    if not spec.outputs:  # promote: it acts on the registry and makes no dataset
        return task_report(stage, {}, {}, {}, project)
    # the datasets whose shards the output's rows point into travel with it to the tasks downstream
    carried = {name: produced[name] for name in pointed_into(Dataset(ref.path)) if name in produced}
    return task_report(stage, {ref.name: ref}, carried, {}, project)


#: the file ``write_details`` leaves in its folder: {"stats": {...}, "reports": {name: file}}
DETAILS = "details.json"


def write_details(folder: str, stats: dict[str, Any], reports: dict[str, str]) -> None:
    """The stage's counts and a copy of each of its HTML reports in ``folder``, listed in DETAILS
    (written last: a reader that finds it finds the reports)."""
    files = {}
    for name, path in reports.items():
        files[name] = f"{name}.html"
        write_text(posixpath.join(folder, files[name]), read_text(path))
    write_text(posixpath.join(folder, DETAILS), json.dumps({"stats": stats, "reports": files}, sort_keys=True,
                                                          default=str))


def _hand_models(spec: StageSpec, config: RunConfig, models: dict[str, TrainedModel]) -> None:
    """The models upstream tasks trained, handed to the stage as the ZenML steps hand them: a
    registry URI for a stage that reads the registry (evaluate), else the folder, which a pod
    holds only after fetching it from the model's MLflow run."""
    for key, name in zip(spec.model_inputs, spec.dataset_names(config, spec.model_inputs)):
        model = models.get(name)
        if model is None:
            continue  # a model the config names by URI or folder: the stage reads it as named
        if spec.models_by_uri and model.uri != model.path:
            value = model.uri
        else:
            log.info("model %s (%s): %s", name, model.uri, ensure_model(model))
            value = model.path
        section, _, field = key.rpartition(".")
        setattr(value_at(config, section), field, value)


def _check_inputs_unchanged(stage: str, config: RunConfig, expected: str) -> None:
    """The files from outside the datasets must be what the run fingerprinted when it started:
    a source rewritten since would make this task's output disagree with its cache key."""
    if not expected:
        return
    recorded = json.loads(expected).get("inputs") or {}
    now = external_md5s(get_stage(stage), config)
    changed = sorted(k for k in set(recorded) | set(now) if recorded.get(k) != now.get(k))
    if changed:
        raise DataError(f"Stage {stage}'s inputs {', '.join(changed)} changed after this run started (md5s "
                        f"{[recorded.get(k) for k in changed]} then, {[now.get(k) for k in changed]} now); start "
                        "a new run, which fingerprints them anew.")


def _read_upstream(upstream: list[str], project: Path | None) -> tuple[dict[str, tuple[str, DatasetRef]],
                                                                      dict[str, TrainedModel]]:
    produced: dict[str, tuple[str, DatasetRef]] = {}
    models: dict[str, TrainedModel] = {}
    for text in upstream:
        if not text:
            continue
        report = json.loads(text)
        for kind in ("carried", "datasets"):  # a dataset the upstream stage made wins over one it carried
            for name, ref in (report.get(kind) or {}).items():
                parsed = DatasetRef.model_validate(ref)
                parsed = parsed.model_copy(update={"path": ref_path(parsed, project)})
                producer = report["stage"] if kind == "datasets" else ref.get("made_by", report["stage"])
                produced[name] = (producer, parsed)
        for name, model in (report.get("models") or {}).items():
            parsed = TrainedModel.model_validate(model)
            if project is not None and not os.path.isabs(parsed.path):
                parsed = parsed.model_copy(update={"path": str(project / parsed.path)})
            models[name] = parsed
    return produced, models


def _pull_inputs(spec: StageSpec, config: RunConfig, produced: dict[str, tuple[str, DatasetRef]],
                 project: Path | None) -> dict[str, DatasetRef]:
    """Each input dataset by the md5 its upstream task reported, and the datasets its rows'
    images lie in (the candidates point into ingest's shards): key -> ref."""
    inputs: dict[str, DatasetRef] = {}
    for key, name in zip(spec.inputs, spec.dataset_names(config, spec.inputs)):
        if name not in produced:
            raise ConfigError(
                f"Stage {spec.name} reads dataset {name!r}, which no upstream task of this pipeline produced "
                f"(they produced: {', '.join(produced) or 'nothing'}). The pipeline was compiled with other "
                "dataset names than this run's config uses: recompile it with this config.")
        _pull(name, produced, project)
        inputs[key] = produced[name][1]
        for pointed in sorted(pointed_into(Dataset(produced[name][1].path))):
            if pointed not in produced:
                raise DataError(f"Dataset {name!r}'s rows point into the shards of {pointed!r}, which no upstream "
                                f"task reported; stage {spec.name} cannot read their images.")
            _pull(pointed, produced, project)
    return inputs


def _pull(name: str, produced: dict[str, tuple[str, DatasetRef]], project: Path | None) -> None:
    producer, ref = produced[name]
    if project is None:
        log.info("input %s: read in place (dvc.enabled is false)", name)
        return
    # a dataset no dvc.yaml stage writes (evaluate's) travels in a .dvc file of its own
    in_dvc_yaml = producer in STAGES and get_stage(producer).dvc_stage
    state = ensure_dataset(ref, project=project, stage=producer if in_dvc_yaml else None, dvc_file=not in_dvc_yaml)
    log.info("input %s (DVC md5 %s): %s", name, ref.dvc_md5, state)


def pointed_into(dataset: Dataset) -> set[str]:
    """The sibling datasets whose shards the manifest's rows point into (``../<name>/shards/``)."""
    if not dataset.exists():
        return set()
    shards = dataset.read_manifest(["shard"]).column("shard").unique().to_pylist()
    found = set()
    for shard in shards:
        parts = posixpath.normpath(shard or "").split("/")
        if len(parts) > 2 and parts[0] == "..":
            found.add(parts[1])
    return found


def _version(stage: str, spec: StageSpec, ref: DatasetRef, config: RunConfig, run: dict[str, Any]) -> DatasetRef:
    """DVC-commit and push the output, and record the version in the remote, which outlives the pod."""
    remote = remote_url(find_project("."))
    try:
        if spec.dvc_stage:
            # a pod holds only what it pulled: dvc.yaml deps it lacks (the raw pool) stay unhashed
            versioned = version_output(stage, ref, config, run=run, allow_missing_deps=True)
        else:  # the tasks downstream run elsewhere and pull it by md5 (promote reads evaluate's results)
            versioned = version_untracked(stage, ref, config, run=run)
    except DataError as exc:
        # no version record is written: whatever reached the remote is no dataset version
        raise DataError(redact(f"Versioning {ref.name} into the DVC remote {remote or '(the default remote)'} failed, "
                               f"so this task made no version of it; a retry pushes it again. {exc}")) from None
    if remote and config.dvc.push:
        entry = next(v for v in reversed(read_versions(config.data.root)) if v.get("dvc_md5") == versioned.dvc_md5)
        log.info("version record: %s", redact(publish_version(remote, entry)))
    return versioned


def _train(stage: str, config: RunConfig, dataset: DatasetRef, run: dict[str, str],
           arguments: list[str]) -> TrainedModel:
    """A training stage: the model registered with the lineage of ``dataset`` and the run, trained
    in this pod or, with ``training.resources.nodes`` above 1, by a Kubeflow Trainer job whose
    nodes run this task again with ``arguments`` (its own command line's run parameters and
    upstream reports)."""
    inputs = {}
    if dataset.dvc_md5:  # only a versioned dataset gets lineage tags
        try:
            inputs = input_md5s(config, STAGES)
        except DataError as exc:  # a source this pod cannot read: the datasets' md5s still hold
            log.warning("the lineage tags leave out the input files' md5s: %s", exc)
    resources = get_stage(stage).resources_for(config)
    if resources.nodes > 1:
        return _train_on_nodes(stage, config, dataset, run, inputs, arguments)
    # one process per GPU the pod was given, training one model (torchrun, DDP)
    processes = max(1, resources.gpus)
    model, _ = train_with_lineage(stage, config, dataset, run, inputs, progress=False, processes=processes)
    log.info("%s: model %s at %s (%s)", stage, model.name, model.path, model.uri)
    return model


def _train_on_nodes(stage: str, config: RunConfig, dataset: DatasetRef, run: dict[str, str],
                    inputs: dict[str, str], arguments: list[str]) -> TrainedModel:
    """Create the stage's TrainJob (N nodes x G GPUs from training.resources), wait for it, and
    read the model its main process registered back from the tracking server."""
    spec = get_stage(stage)
    settings = LaunchSettings.from_env()
    context = training_context(stage, config, dataset, run, inputs)
    # stable per run and stage: a retried task finds the job its first attempt created
    name = job_name(stage, run.get("id") or hashlib.md5(json.dumps(context, sort_keys=True).encode()).hexdigest())  # noqa: S324
    context["lineage_tags"] = {**context["lineage_tags"], TRAINJOB_TAG: name}
    resources = config.training.resources
    namespace = current_namespace()
    job = render_trainjob(
        name=name, namespace=namespace, image=settings.image,
        command=node_command(stage, [*arguments, "--training-context", json.dumps(context, sort_keys=True)]),
        resources=resources,
        secret_env={settings.secret_name: environment.SECRET_ENV},
        config_map_env={settings.config_map_name: environment.CONFIG_MAP_ENV},
        node_selector=settings.gpu_node_selector if resources.gpus else None,
        tolerations=settings.gpu_tolerations if resources.gpus else (),
        active_deadline_s=int(spec.timeout_hours * 3600),
        labels={"photogenic.io/stage": stage.replace("_", "-")})
    api = custom_objects_api()
    submit(api, job)
    wait(api, namespace, name, timeout_s=spec.timeout_hours * 3600, poll_s=settings.poll_s)
    output = spec.dataset_names(config, spec.model_outputs)[0]
    use_tracking_store(config.training.tracking)
    model = model_from_run(output, model_dir(config.data.root, output), tracked_run(name))
    log.info("%s: model %s from TrainJob %s/%s (%s)", stage, model.name, namespace, name, model.uri)
    return model


def _task_arguments(values: dict[str, Any], upstream: list[str]) -> list[str]:
    """This task's own command line (``main``'s options): its run parameters and upstream reports."""
    arguments: list[str] = []
    for parameter in PIPELINE_PARAMETERS:
        arguments += [f"--{parameter.name.replace('_', '-')}", parameter_text(values[parameter.name])]
    for report in upstream:
        arguments += ["--upstream", report]
    return arguments


def ref_path(ref: DatasetRef, project: Path | None) -> str:
    """A reported ref's folder in this pod: reports hold paths relative to the project."""
    if is_url(ref.path) or os.path.isabs(ref.path) or project is None:
        return ref.path
    return str(project / ref.path)


def task_report(stage: str, datasets: dict[str, DatasetRef], carried: dict[str, tuple[str, DatasetRef]],
            models: dict[str, Any], project: Path | None) -> str:
    """The task's output: content only, paths relative to the project, so that the same data
    gives the same report in any pod. ``carried``: name -> (the stage that made it, its ref)."""
    def portable(ref: DatasetRef) -> dict[str, Any]:
        if project is None or is_url(ref.path):
            return ref.model_dump()
        path = os.path.relpath(Path(ref.path).resolve(), project.resolve())
        manifest = os.path.relpath(Path(ref.manifest).resolve(), project.resolve())
        return ref.model_copy(update={"path": path, "manifest": manifest}).model_dump()

    return json.dumps({"stage": stage, "datasets": {n: portable(r) for n, r in datasets.items()},
                       "carried": {n: {**portable(r), "made_by": by} for n, (by, r) in carried.items()},
                       "models": models}, sort_keys=True, default=str)


def _prepare_dvc(config: RunConfig, remote: str) -> Path | None:
    """The DVC project the task versions into (None when dvc.enabled is false)."""
    if not config.dvc.enabled:
        return None
    project = find_project(".")
    if project is None:
        project = Path.cwd()
        run_dvc(project, "init", "--no-scm")
    elif not _in_git_work_tree(project):
        # an image holds the project without .git: DVC must not look for one
        run_dvc(project, "config", "core.no_scm", "true")
    if remote:
        run_dvc(project, "remote", "add", "--default", "--force", "run", remote)
    return project


def _in_git_work_tree(project: Path) -> bool:
    done = subprocess.run(["git", "rev-parse", "--is-inside-work-tree"], cwd=project, capture_output=True, text=True)
    return done.returncode == 0 and done.stdout.strip() == "true"


def remote_url(project: Path | None) -> str | None:
    """The default DVC remote's URL (None without a project or a remote)."""
    if project is None:
        return None
    try:
        name = run_dvc(project, "remote", "default").strip()
        return run_dvc(project, "config", f"remote.{name}.url").strip() if name else None
    except DataError:
        return None


def _cluster_environment() -> None:
    """A ConfigMap key set to nothing reaches the pod as an empty variable; boto3 would take an
    empty AWS_ENDPOINT_URL for an endpoint."""
    for name in ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "MLFLOW_TRACKING_URI", "DVC_REMOTE_URL"):
        if name in os.environ and not os.environ[name].strip():
            del os.environ[name]


def _parameter_values(args: argparse.Namespace) -> dict[str, Any]:
    values = {}
    for parameter in PIPELINE_PARAMETERS:
        raw = getattr(args, parameter.name)
        if raw is None:
            values[parameter.name] = parameter.default
        elif parameter.type is list:
            values[parameter.name] = json.loads(raw) if raw.strip() else []
        elif parameter.type is bool:
            values[parameter.name] = raw.strip().lower() in ("true", "1", "yes")
        else:
            values[parameter.name] = parameter.type(raw)
    return values


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage")
    parser.add_argument("--check", action="store_true", help="Fingerprint the stages' inputs and decide.")
    parser.add_argument("--stages", default="", help="--check: the pipeline's stages, comma-separated.")
    for parameter in PIPELINE_PARAMETERS:
        parser.add_argument(f"--{parameter.name.replace('_', '-')}", dest=parameter.name, default=None)
    parser.add_argument("--upstream", action="append", default=[], help="An upstream task's output (JSON).")
    parser.add_argument("--fingerprint", default="", help="The fingerprint the check task gave this stage.")
    parser.add_argument("--output", help="Where to write this task's output (JSON).")
    parser.add_argument("--ray-job", default="", metavar="IMAGE",
                        help="Run the stage as a KubeRay RayJob of this image, and wait for it.")
    parser.add_argument("--details-to", default="", metavar="FOLDER",
                        help="Also write the stage's counts and HTML reports to this folder (a URL).")
    parser.add_argument("--train-node", action="store_true",
                        help="Run as a node of the stage's multi-node training job (a Kubeflow Trainer pod).")
    parser.add_argument("--training-context", default="{}", help="--train-node: the run's training context (JSON).")
    parser.add_argument("--output-changed")
    parser.add_argument("--output-reason")
    parser.add_argument("--output-fingerprint", nargs=2, action="append", default=[], metavar=("STAGE", "PATH"))
    args = parser.parse_args(argv)
    values = _parameter_values(args)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    redact_output(*logging.getLogger().handlers)  # a pod's log outlives it: no URI's credentials in it
    _cluster_environment()
    if args.check:
        check = check_inputs(values, [s for s in args.stages.split(",") if s])
        log.info("%s: %s", "running the stages" if check.changed else "skipping the stages", check.reason)
        for path in (args.output_changed, args.output_reason, *(p for _, p in args.output_fingerprint)):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        write_text(args.output_changed, "true" if check.changed else "false")
        write_text(args.output_reason, check.reason)
        for stage, path in args.output_fingerprint:
            write_text(path, check.fingerprints[stage])
        return
    if args.train_node:
        run_task(args.stage, values, args.upstream, node_context=json.loads(args.training_context))
        return
    if args.ray_job:
        result = run_as_rayjob(args.stage, values, list(argv if argv is not None else sys.argv[1:]), args.ray_job)
    else:
        result = run_task(args.stage, values, args.upstream, expected=args.fingerprint, details=args.details_to)
    if not is_url(args.output):
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    write_text(args.output, result)


def run_as_rayjob(stage: str, values: dict[str, Any], argv: list[str], image: str, api: Any = None) -> str:
    """Launch this task's command, minus ``--ray-job``, as a RayJob and return the report its
    driver leaves in the object store (under the run's DVC remote)."""
    from photogenic.kfp.rayjob import StageJob

    job = StageJob.new(stage, environment.dvc_remote(values.get("dvc_remote") or ""),
                       f"the run's dvc_remote (or {environment.CONFIG_MAP_ENV['DVC_REMOTE_URL']})")
    command, skip = [], 0
    for arg in argv:
        if skip:
            skip -= 1
        elif arg == "--ray-job" or arg == "--output":
            skip = 1
        elif not arg.startswith(("--ray-job=", "--output=")):
            command.append(arg)
    return job.run(task_config(stage, values), command, image, api)


if __name__ == "__main__":
    main()
