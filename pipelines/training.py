"""The training pipeline: pretrain → quality_tune → evaluate → promote.

pretrain and quality_tune are tracked in MLflow through ZenML's experiment tracker and register
their models; evaluate samples the quality-tuned model against the pretrained one with the same
seeds and judges them in pairs; promote gives the quality-tuned version the registry alias
(champion) only if it won clearly. Run alone, it trains on the datasets an earlier data curation
run left; the emu pipeline (pipelines/emu.py) hands it the ones its data chain just versioned.
"""

from __future__ import annotations

from zenml import pipeline

from photogenic.config import config_from_dict
from photogenic.lineage.tags import keyed_input_md5s
from photogenic.stages.registry import STAGES
from steps.cache import dataset_content_hash, external_md5s_by_stage, stage_config
from steps.evaluate import evaluate_with_resources
from steps.existing_dataset import existing_dataset
from steps.promote import promote
from steps.training import pretrain, quality_tune, training_settings


def training_chain(config: dict, md5s: dict, datasets: dict | None = None, progress: bool = True) -> None:
    """The training steps, composed. ``md5s``: ``external_md5s_by_stage``. ``datasets``: dataset
    name -> the artifact of an upstream step that versioned it; a dataset not in it is read as it
    is on disk (``existing_dataset``)."""
    cfg = config_from_dict(config)
    datasets = dict(datasets or {})
    training_config = stage_config("pretrain", config)

    def dataset(stage: str):
        name = getattr(cfg.training, stage).input
        if name not in datasets:
            datasets[name] = existing_dataset(config=stage_config(stage, config), name=name,
                                              key=f"training.{stage}.input",
                                              content_hash=dataset_content_hash(config, name), id=f"dataset_{name}")
        return datasets[name]

    # the md5s of the sources and annotation exports behind the data: the models' lineage tags
    inputs = keyed_input_md5s(md5s, STAGES)
    pretrained = pretrain.with_options(settings=training_settings("pretrain", cfg))(
        dataset("pretrain"), config=training_config, external_md5s=inputs, progress=progress)
    quality_tuned = quality_tune.with_options(settings=training_settings("quality_tune", cfg))(
        dataset("quality_tune"), pretrained, config=stage_config("quality_tune", config), external_md5s=inputs,
        progress=progress)
    evaluated, _ = evaluate_with_resources(cfg)(
        config=stage_config("evaluate", config), external_md5s=md5s["evaluate"],
        candidate=quality_tuned, baseline=pretrained, progress=progress)
    promote(evaluated, config=stage_config("promote", config))


@pipeline(enable_cache=True)
def training(config: dict, progress: bool = True) -> None:
    training_chain(config, external_md5s_by_stage(config), progress=progress)
