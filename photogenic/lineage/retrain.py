"""Whether retraining is due: the sources' and annotation exports' md5s now, against those the
current champion model version was made from (its photogenic.input_md5.* tags)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from photogenic.config import RunConfig
from photogenic.lineage.tags import read_tags, input_md5s


@dataclass
class RetrainDecision:
    changed: bool
    reasons: list[str] = field(default_factory=list)
    champion: str | None = None  # "name vN"

    def message(self) -> str:
        if not self.changed:
            return (f"Nothing changed since the champion ({self.champion}): the sources and annotation exports "
                    "have the md5s recorded in its lineage. Not retraining.")
        return "Retraining: " + "; ".join(self.reasons) + "."


def retrain_decision(config: RunConfig, model: str, alias: str, client: Any = None) -> RetrainDecision:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = client or MlflowClient()
    try:
        version = client.get_model_version_by_alias(model, alias)
    except MlflowException:
        return RetrainDecision(True, [f"there is no {model}@{alias} model version yet"])
    champion = f"{model} v{version.version}"
    recorded = read_tags(dict(version.tags))["inputs"]
    if not recorded:
        return RetrainDecision(True, [f"{champion} carries no input md5 tags (photogenic.input_md5.*) to compare"],
                               champion)
    current = input_md5s(config)
    reasons = [
        f"{key} is {current.get(key) or 'gone'} (the champion was made from {recorded.get(key) or 'none'})"
        for key in sorted(set(current) | set(recorded)) if current.get(key) != recorded.get(key)
    ]
    return RetrainDecision(bool(reasons), reasons, champion)
