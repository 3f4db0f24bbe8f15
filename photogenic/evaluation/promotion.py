"""The promotion gate: the candidate gets the registry alias (``champion``) only if it clearly
beats the model it was evaluated against.

Rules (``evaluate.promotion``):

1. the candidate must be a version of the registered model (``models:/<name>/<version>`` when
   evaluated, or named explicitly);
2. its opponent must be the current holder of the alias; when no version holds it yet, any
   baseline (the pretrained model) will do;
3. on the configured judge, over all prompts, the win rate must reach ``0.5 + margin`` and the
   interval's lower bound must exceed ``min_ci_low`` (0.5: better than parity with the stated
   confidence).

The decision and its numbers are recorded as tags on the candidate's model version
(``photogenic.gate.*``), whatever the decision, so the registry shows why a version is or is not
the champion.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

from photogenic.errors import ConfigError, DataError
from photogenic.evaluation.comparisons import ALL
from photogenic.evaluation.models import raise_if_store_unusable

log = logging.getLogger(__name__)
TAG = "photogenic.gate."


@dataclass(frozen=True)
class GateDecision:
    promoted: bool
    reason: str
    registered_model: str
    version: str
    alias: str
    judge: str
    win_rate: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    n: int
    margin: float
    opponent: str
    previous_champion: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def promote(results: dict[str, Any], settings: Any, candidate_version: str | None = None) -> GateDecision:
    """Apply the gate to an evaluation's results; tag the candidate version; move the alias if it won."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    name = settings.registered_model
    a, b = results["model_a"], results["model_b"]
    candidate, opponent = results["models"][a], results["models"][b]
    version = str(candidate_version or (candidate.get("version") if candidate.get("registered_name") == name else "")
                  or "")
    if not version:
        raise ConfigError(f"The promotion gate needs the candidate's version in the registered model {name!r}: "
                          f"evaluate it as models:/{name}/<version>, or pass the version explicitly.")
    try:
        client.get_model_version(name, version)
    except MlflowException as exc:
        raise_if_store_unusable(exc)
        raise DataError(f"Version {version} of the registered model {name!r} does not exist in the MLflow registry."
                        ) from None
    try:
        champion = str(client.get_model_version_by_alias(name, settings.alias).version)
    except MlflowException:
        champion = None

    row = next((r for r in results["win_rates"] if r["judge"] == settings.judge and r["category"] == ALL), None)
    if row is None:
        raise ConfigError(f"evaluate.promotion.judge is {settings.judge!r}, but the evaluation has no win rate for "
                          f"it (judges: {', '.join(j['name'] for j in results['judges'])}).")
    threshold = 0.5 + settings.margin
    opponent_is_champion = opponent.get("registered_name") == name and str(opponent.get("version")) == champion
    if champion == version:
        promoted, reason = False, f"version {version} already holds @{settings.alias}"
    elif champion is not None and not opponent_is_champion:
        promoted, reason = False, (f"evaluated against {opponent['spec']}, but the current @{settings.alias} is "
                                   f"version {champion}: evaluate against models:/{name}@{settings.alias}")
    elif row["n"] == 0 or row["win_rate"] is None:
        promoted, reason = False, "no comparisons"
    elif row["win_rate"] < threshold:
        promoted, reason = False, f"win rate {row['win_rate']:.3f} below {threshold:.3f} (0.5 + margin)"
    elif not row["ci_low"] > settings.min_ci_low:
        promoted, reason = False, f"interval lower bound {row['ci_low']:.3f} not above {settings.min_ci_low:.3f}"
    else:
        promoted, reason = True, (f"win rate {row['win_rate']:.3f} >= {threshold:.3f} and lower bound "
                                  f"{row['ci_low']:.3f} > {settings.min_ci_low:.3f} against {opponent['spec']}")
    decision = GateDecision(promoted=promoted, reason=reason, registered_model=name, version=version,
                            alias=settings.alias, judge=settings.judge, win_rate=row.get("win_rate"),
                            ci_low=row.get("ci_low"), ci_high=row.get("ci_high"), p_value=row.get("p_value"),
                            n=int(row["n"]), margin=settings.margin, opponent=opponent["spec"],
                            previous_champion=champion)
    tags = {"decision": "promoted" if promoted else "refused", "reason": reason, "judge": settings.judge,
            "win_rate": row.get("win_rate"), "ci_low": row.get("ci_low"), "ci_high": row.get("ci_high"),
            "p_value": row.get("p_value"), "n": row["n"], "margin": settings.margin,
            "min_ci_low": settings.min_ci_low, "opponent": opponent["spec"],
            "previous_champion": champion or "none", "evaluation_run": results.get("mlflow_run_id") or "none"}
    for key, value in tags.items():
        client.set_model_version_tag(name, version, TAG + key, "" if value is None else str(value))
    if promoted:
        client.set_registered_model_alias(name, settings.alias, version)
    log.info("promotion gate: %s version %s: %s", "PROMOTED" if promoted else "refused", version, reason)
    return decision
