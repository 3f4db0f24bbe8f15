"""What every KFP step runs: one declared stage, between a DVC pull and a DVC push.

In a cluster container there is no git checkout and no data: the image holds the project (code,
dvc.yaml, configs, .dvc/config), so the task turns on DVC's ``core.no_scm``, points the default
remote at the run's ``dvc_remote`` when given, pulls each input dataset by the DVC md5 its
upstream task reported, runs ``photogenic step``'s core (stage + quality gate), commits and
pushes the output, and reports ``{"stage": ..., "datasets": {name: DatasetRef}}`` as its output
for the tasks downstream. The same function serves the local runs under ``kfp.local``.

    python -m photogenic.kfp.task --stage ingest --config-file configs/default.yaml ... --output PATH
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from photogenic.config import RunConfig, load_config
from photogenic.dataset.atomic import read_text, write_text
from photogenic.dataset.ref import DatasetRef
from photogenic.errors import ConfigError, DataError
from photogenic.kfp.parameters import PIPELINE_PARAMETERS, parameter_overrides
from photogenic.lineage.tags import input_md5s
from photogenic.paths import is_url
from photogenic.stages.registry import STAGES, get_stage
from photogenic.stages.runner import check_output, run_stage
from photogenic.stages.training import train_with_lineage
from photogenic.training.artifact import TrainedModel, ensure_model
from photogenic.versioning.dvc import find_project, run_dvc, write_params
from photogenic.versioning.log import git_commit
from photogenic.versioning.record import version_output, version_untracked
from photogenic.versioning.restore import ensure_dataset

log = logging.getLogger(__name__)


def task_config(stage: str, values: dict[str, Any]) -> RunConfig:
    """The run config a task uses: the config file (a path in the image or a URL), then the
    pipeline parameters as overrides."""
    path = values.get("config_file") or None
    if path and is_url(path):
        import tempfile

        local = Path(tempfile.mkdtemp()) / "config.yaml"
        local.write_text(read_text(path), encoding="utf-8")
        path = str(local)
    return load_config(path, parameter_overrides(values, get_stage(stage).params))


def run_task(stage: str, values: dict[str, Any], upstream: list[str], run_id: str = "", run_name: str = "") -> str:
    spec = get_stage(stage)
    config = task_config(stage, values)
    project = _prepare_dvc(config, values.get("dvc_remote") or "")
    if project is not None:
        write_params(project, config.resolved())  # dvc.yaml reads its paths and params here

    produced: dict[str, tuple[str, DatasetRef]] = {}
    models: dict[str, TrainedModel] = {}
    for text in upstream:
        if text:
            report = json.loads(text)
            for name, ref in report["datasets"].items():
                produced[name] = (report["stage"], DatasetRef.model_validate(ref))
            for name, model in (report.get("models") or {}).items():
                models[name] = TrainedModel.model_validate(model)
    for name in spec.dataset_names(config, spec.inputs):
        if name not in produced:
            raise ConfigError(
                f"Stage {stage} reads dataset {name!r}, which no upstream task of this pipeline produced "
                f"(they produced: {', '.join(produced) or 'nothing'}). The pipeline was compiled with other "
                "dataset names than this run's config uses: recompile it with this config."
            )
        producer, ref = produced[name]
        # a dataset no dvc.yaml stage writes (evaluate's) travels in a .dvc file of its own
        in_dvc_yaml = get_stage(producer).dvc_stage
        state = (ensure_dataset(ref, project=project, stage=producer if in_dvc_yaml else None,
                                dvc_file=not in_dvc_yaml) if project else "present")
        log.info("input %s (DVC md5 %s): %s", name, ref.dvc_md5, state)
    for name in spec.dataset_names(config, spec.model_inputs):
        if name in models:  # a pod holds only what it fetched: the model comes from its MLflow run
            log.info("model %s (%s): %s", name, models[name].uri, ensure_model(models[name]))
    if spec.model_outputs:
        model = _train(stage, config, produced[spec.dataset_names(config, spec.inputs)[0]][1],
                       {"runner": "kfp", "id": run_id, "name": run_name})
        return json.dumps({"stage": stage, "datasets": {}, "models": {model.name: model.model_dump()}})
    inputs = {key: produced[name][1] for key, name in zip(spec.inputs, spec.dataset_names(config, spec.inputs))}
    output = run_stage(stage, config, progress=False, inputs=inputs)
    check_output(stage, output.ref, config)
    ref = output.ref
    if project is not None and spec.outputs:
        run = {"runner": "kfp", "id": run_id, "name": run_name, "dataset_version": values.get("dataset_version", "")}
        if spec.dvc_stage:
            # a pod holds only what it pulled: dvc.yaml deps it lacks (the raw pool) stay unhashed
            ref = version_output(stage, ref, config, run=run, allow_missing_deps=True)
        else:  # the tasks downstream run elsewhere and pull it by md5 (promote reads evaluate's results)
            ref = version_untracked(stage, ref, config, run=run)
    log.info("%s: %d rows, %d quarantined, DVC md5 %s", stage, ref.rows, ref.quarantined, ref.dvc_md5)
    return json.dumps({"stage": stage, "datasets": {ref.name: ref.model_dump()}, "stats": output.stats}, default=str)


def _train(stage: str, config: RunConfig, dataset: DatasetRef, run: dict[str, str]):
    """A training stage: the model registered with the lineage of ``dataset`` and the run."""
    inputs = {}
    if dataset.dvc_md5:  # only a versioned dataset gets lineage tags
        try:
            inputs = input_md5s(config, STAGES)
        except DataError as exc:  # a source this pod cannot read: the datasets' md5s still hold
            log.warning("the lineage tags leave out the input files' md5s: %s", exc)
    model, _ = train_with_lineage(stage, config, dataset, run, inputs, progress=False)
    log.info("%s: model %s at %s (%s)", stage, model.name, model.path, model.uri)
    return model


def _prepare_dvc(config: RunConfig, remote: str) -> Path | None:
    """The DVC project the task versions into (None when dvc.enabled is false)."""
    if not config.dvc.enabled:
        return None

    project = find_project(".")
    if project is None:
        project = Path.cwd()
        run_dvc(project, "init", "--no-scm")
    elif git_commit(project) is None:
        # an image holds the project without .git: DVC must not look for one
        run_dvc(project, "config", "core.no_scm", "true")
    if remote:
        run_dvc(project, "remote", "add", "--default", "--force", "run", remote)
    return project


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", required=True)
    for parameter in PIPELINE_PARAMETERS:
        parser.add_argument(f"--{parameter.name.replace('_', '-')}", dest=parameter.name, default=None)
    parser.add_argument("--upstream", action="append", default=[], help="An upstream task's output (JSON).")
    parser.add_argument("--run-id", default="")
    parser.add_argument("--run-name", default="")
    parser.add_argument("--output", required=True, help="Where to write this task's output (JSON).")
    args = parser.parse_args(argv)
    values = {}
    for parameter in PIPELINE_PARAMETERS:
        raw = getattr(args, parameter.name)
        if raw is None:
            values[parameter.name] = parameter.default
        elif parameter.type is list:
            values[parameter.name] = json.loads(raw) if raw.strip() else []
        else:
            values[parameter.name] = parameter.type(raw)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    result = run_task(args.stage, values, args.upstream, run_id=args.run_id, run_name=args.run_name)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    write_text(args.output, result)


if __name__ == "__main__":
    main()
