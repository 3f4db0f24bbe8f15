"""The KFP pipeline's run parameters (what the KFP UI's "Create run" form shows) and how they
become config overrides inside each task.

The typed conveniences set config fields by name in the sections the stages declare, so they
follow the stages as they are added: ``seed`` sets every field named ``seed``; ``steps`` every
``max_steps``; ``model_checkpoint`` every ``checkpoint``. A parameter set to a non-default value
that no declared section has a field for is a ConfigError (never silently ignored).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from photogenic.config import field_annotation
from photogenic.errors import ConfigError


@dataclass(frozen=True)
class PipelineParameter:
    name: str
    type: type
    default: Any
    help: str
    #: config field names the parameter sets wherever a stage section has them
    fields: tuple[str, ...] = ()
    #: read by the first task only (whether to run at all), so it is no part of a stage task's
    #: inputs, and a scheduled run and a run started by hand share KFP's cache
    decision: bool = False


PIPELINE_PARAMETERS: tuple[PipelineParameter, ...] = (
    PipelineParameter("config_file", str, "configs/default.yaml",
                      "Run config (YAML): a path inside the image, or a URL (s3://...)."),
    PipelineParameter("source_uris", list, [], "WebDataset shard URIs/patterns; replace ingest.sources when given."),
    PipelineParameter("dataset_version", str, "",
                      "A label recorded with every dataset version this run makes (data/versions.jsonl)."),
    PipelineParameter("model_checkpoint", str, "", "Base model checkpoint (hub id or path) for the training stages.",
                      fields=("checkpoint",)),
    PipelineParameter("steps", int, 0, "Training steps (0: the config's).", fields=("max_steps",)),
    PipelineParameter("seed", int, -1, "Random seed of every stage that has one (-1: the config's).",
                      fields=("seed",)),
    PipelineParameter("overrides", list, [], "Further config overrides, each section.key=value."),
    PipelineParameter("dvc_remote", str, "",
                      "DVC remote URL (s3://bucket/path) the tasks pull inputs from and push outputs to; "
                      "empty: the cluster's DVC_REMOTE_URL (ConfigMap), else the project's default remote."),
    PipelineParameter("only_if_changed", bool, False,
                      "Scheduled retraining: run the stages only when the sources or annotation exports changed "
                      "since the champion model was made (the first task says why it skips).", decision=True),
    PipelineParameter("champion", str, "photogenic-t2i@champion",
                      "The registered model and alias only_if_changed compares with (NAME@ALIAS).", decision=True),
)

#: the parameters a stage task takes (the others decide whether the stages run at all)
STAGE_PARAMETERS = tuple(p for p in PIPELINE_PARAMETERS if not p.decision)

#: the value that leaves a typed convenience unset
UNSET = {p.name: p.default for p in PIPELINE_PARAMETERS}


def parameter_text(value: Any) -> str:
    """A parameter's value as KFP's launcher puts it on a task's command line (and a task reads it
    back, photogenic.kfp.task): booleans lower-case, lists as JSON, whole floats as integers."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def parameter_overrides(values: dict[str, Any], sections: tuple[str, ...]) -> list[str]:
    """``--set`` overrides for the pipeline parameter ``values``, applied to ``sections``."""
    overrides: list[str] = []
    uris = values.get("source_uris") or []
    if uris:  # the run form's URIs replace the configured sources (JSON is YAML, as --set parses)
        overrides.append("ingest.sources=" + json.dumps([{"kind": "webdataset", "uri": str(u)} for u in uris]))
    for parameter in PIPELINE_PARAMETERS:
        if not parameter.fields or values.get(parameter.name, parameter.default) == parameter.default:
            continue
        keys = config_keys_named(parameter.fields, sections)
        if not keys:
            raise ConfigError(
                f"Pipeline parameter {parameter.name}={values[parameter.name]!r} sets fields named "
                f"{', '.join(parameter.fields)}, but no stage section of this pipeline ({', '.join(sections)}) has one; "
                f"leave it at {parameter.default!r}."
            )
        overrides += [f"{key}={values[parameter.name]}" for key in keys]
    overrides += list(values.get("overrides") or [])
    return overrides


def config_keys_named(fields: tuple[str, ...], sections: tuple[str, ...]) -> list[str]:
    """Dotted keys of every field named one of ``fields`` inside ``sections`` (nested included)."""
    from pydantic import BaseModel

    found: list[str] = []

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, info in model.model_fields.items():
            annotation = info.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                walk(annotation, f"{prefix}{name}.")
            elif name in fields:
                found.append(f"{prefix}{name}")

    for section in sections:  # a section, or a dotted subsection (``training.pretrain``)
        try:
            model = field_annotation(section)
        except KeyError:
            continue
        if isinstance(model, type) and issubclass(model, BaseModel):
            walk(model, f"{section}.")
    return sorted(set(found))
