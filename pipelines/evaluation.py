"""The evaluation pipeline: evaluate the configured candidate model against the baseline
(``evaluate.candidate`` / ``evaluate.baseline``: diffusers folders or models:/ URIs), then the
promotion gate. The training pipeline runs the same two steps after quality-tuning, handing
over the models it trained. Uncached: a model named by alias (``models:/name@champion``) is not
content-addressed, and the gate acts on the registry as it stands.
"""

from __future__ import annotations

from zenml import pipeline

from photogenic.config import config_from_dict
from steps.cache import stage_config, stage_external_md5s
from steps.evaluate import evaluate_with_resources
from steps.promote import promote


@pipeline(enable_cache=False)
def evaluation(config: dict, progress: bool = True) -> None:
    evaluated, _ = evaluate_with_resources(config_from_dict(config)).with_options(enable_cache=False)(
        config=stage_config("evaluate", config), external_md5s=stage_external_md5s("evaluate", config),
        progress=progress)
    promote.with_options(enable_cache=False)(evaluated, config=stage_config("promote", config))
