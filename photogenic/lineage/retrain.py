"""Whether retraining is due: the sources' and annotation exports' md5s now, against those the
current champion model version (else the last version trained) was made from (its photogenic.input_md5.* tags)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from photogenic.config import RunConfig
from photogenic.lineage.tags import input_md5s, read_tags
from photogenic.stages.spec import StageSpec


@dataclass
class RetrainDecision:
    changed: bool
    reasons: list[str] = field(default_factory=list)
    #: what the inputs were compared with, e.g. "the champion (photogenic-t2i v3)"
    compared_with: str | None = None

    def message(self) -> str:
        if not self.changed:
            return (f"Nothing changed since {self.compared_with}: the sources and annotation exports have the md5s "
                    "recorded in its lineage. Not retraining.")
        return "Retraining: " + "; ".join(self.reasons) + "."


def retrain_decision(config: RunConfig, stages: dict[str, StageSpec], model: str, alias: str,
                     client: Any = None) -> RetrainDecision:
    """Against ``model@alias``; with no version under that alias yet (no model ever passed the
    promotion gate), against the last version the recipe registered: the same inputs would train
    the same model again (the seeds are fixed), which the gate has already turned down."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = client or MlflowClient()
    try:
        version = client.get_model_version_by_alias(model, alias)
        compared_with = f"the {alias} ({model} v{version.version})"
    except MlflowException:
        try:
            trained = [v for v in client.search_model_versions(f"name='{model}'") if read_tags(dict(v.tags))["inputs"]]
        except MlflowException:
            trained = []
        if not trained:
            return RetrainDecision(True, [f"there is no {model}@{alias} model version, nor any {model} version "
                                         "the recipe trained, yet"])
        version = max(trained, key=lambda v: int(v.version))
        compared_with = f"the last model trained ({model} v{version.version}; no version is {alias} yet)"
    recorded = read_tags(dict(version.tags))["inputs"]
    if not recorded:
        return RetrainDecision(True, [f"{compared_with} carries no input md5 tags (photogenic.input_md5.*) to compare"],
                               compared_with)
    current = input_md5s(config, stages)
    reasons = [
        f"{key} is {current.get(key) or 'gone'} ({model} v{version.version} was made from {recorded.get(key) or 'none'})"
        for key in sorted(set(current) | set(recorded)) if current.get(key) != recorded.get(key)
    ]
    return RetrainDecision(bool(reasons), reasons, compared_with)
