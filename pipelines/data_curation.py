"""The data curation pipeline: sources → ingested dataset → candidate pool → curated set (two
human stages; SIMULATED annotators on the sample pool) → captioned set → upsampled set →
packaged training set. Each stage's output passes its quality gate and is versioned before the
next stage reads it.
"""

from __future__ import annotations

from zenml import pipeline

from photogenic.config import config_from_dict
from steps.auto_filter import auto_filter
from steps.cache import external_md5s_by_stage, stage_config
from steps.caption import caption
from steps.curation import curation
from steps.filter_calibration import filter_calibration
from steps.ingest import ingest
from steps.package import package
from steps.quality_gate import quality_gate
from steps.settings import step_settings
from steps.upsample import SPEC as UPSAMPLE
from steps.upsample import upsample
from steps.version_dataset import version_dataset


def curation_chain(config: dict, md5s: dict, progress: bool = True, ray_job: str = "") -> dict:
    """The data curation steps, composed; returns dataset name -> its versioned artifact (what the
    training chain reads when the emu pipeline runs both). ``md5s``: ``external_md5s_by_stage``.
    ``ray_job``: an image; the data-plane stages (photogenic.kfp.rayjob.RAY_STAGES) then run as
    KubeRay RayJobs of it."""
    # each step takes its stage's config sections only, so it re-runs when they change, not others
    versioned = {}

    def gate_and_version(dataset, stage: str, stage_cfg: dict):
        gated = quality_gate(dataset, config=stage_cfg, stage=stage, id=f"gate_{stage}")
        return version_dataset(gated, config=stage_cfg, stage=stage, id=f"version_{stage}")

    cfg = config_from_dict(config)
    ingest_config = stage_config("ingest", config)
    ingested = ingest(config=ingest_config, external_md5s=md5s["ingest"], progress=progress, ray_job=ray_job)
    versioned[cfg.ingest.output] = gate_and_version(ingested, "ingest", ingest_config)
    filter_config = stage_config("auto_filter", config)
    if cfg.filter.calibrate.enabled:
        # thresholds fitted from people's verdicts, for the next run (this one filters with its own)
        filter_calibration(versioned[cfg.ingest.output], config=filter_config, progress=progress)
    candidates, _ = auto_filter(versioned[cfg.ingest.output], config=filter_config, progress=progress,
                                ray_job=ray_job)
    versioned[cfg.filter.output] = gate_and_version(candidates, "auto_filter", filter_config)
    curation_config = stage_config("curation", config)
    curated = curation(versioned[cfg.filter.output], config=curation_config,
                       external_md5s=md5s["curation"], progress=progress)
    versioned[cfg.curation.output] = gate_and_version(curated, "curation", curation_config)
    caption_config = stage_config("caption", config)
    captioned = caption(versioned[cfg.curation.output], config=caption_config, progress=progress,
                        ray_job=ray_job)
    versioned[cfg.caption.output] = gate_and_version(captioned, "caption", caption_config)
    upsample_config = stage_config("upsample", config)
    # the upsampler asks for a GPU only when the run configures a diffusion checkpoint
    upsampled = upsample.with_options(settings=step_settings(UPSAMPLE, cfg))(
        versioned[cfg.caption.output], config=upsample_config, progress=progress, ray_job=ray_job)
    versioned[cfg.upsample.output] = gate_and_version(upsampled, "upsample", upsample_config)
    package_config = stage_config("package", config)
    training_set, _ = package(versioned[cfg.upsample.output], config=package_config, progress=progress,
                              ray_job=ray_job)
    versioned[cfg.package.output] = gate_and_version(training_set, "package", package_config)
    return versioned


@pipeline(enable_cache=True)
def data_curation(config: dict, progress: bool = True, ray_job: str = "") -> None:
    curation_chain(config, external_md5s_by_stage(config), progress, ray_job)
