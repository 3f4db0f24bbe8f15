"""The data curation pipeline: sources → ingested dataset → candidate pool → curated set (two
human stages; SIMULATED annotators on the sample pool) → captioned set → upsampled set →
packaged training set. Each stage's output passes its quality gate and is versioned before the
next stage reads it.
"""

from __future__ import annotations

from zenml import pipeline

from photogenic.config import config_from_dict

from steps.auto_filter import auto_filter
from steps.cache import stage_config, stage_external_md5s
from steps.caption import caption
from steps.curation import curation
from steps.ingest import ingest
from steps.package import package
from steps.quality_gate import quality_gate
from steps.settings import step_settings
from steps.upsample import SPEC as UPSAMPLE
from steps.upsample import upsample
from steps.version_dataset import version_dataset


@pipeline(enable_cache=True)
def data_curation(config: dict, progress: bool = True) -> None:
    # each step takes its stage's config sections only, so it re-runs when they change, not others
    ingest_config = stage_config("ingest", config)
    ingested = ingest(config=ingest_config, external_md5s=stage_external_md5s("ingest", config), progress=progress)
    gated = quality_gate(ingested, config=ingest_config, stage="ingest", id="gate_ingest")
    versioned = version_dataset(gated, config=ingest_config, stage="ingest", id="version_ingest")
    filter_config = stage_config("auto_filter", config)
    candidates, _ = auto_filter(versioned, config=filter_config, progress=progress)
    gated_candidates = quality_gate(candidates, config=filter_config, stage="auto_filter", id="gate_auto_filter")
    versioned_candidates = version_dataset(gated_candidates, config=filter_config, stage="auto_filter",
                                           id="version_auto_filter")
    curation_config = stage_config("curation", config)
    curated = curation(versioned_candidates, config=curation_config,
                       external_md5s=stage_external_md5s("curation", config), progress=progress)
    gated_curated = quality_gate(curated, config=curation_config, stage="curation", id="gate_curation")
    versioned_curated = version_dataset(gated_curated, config=curation_config, stage="curation",
                                        id="version_curation")
    caption_config = stage_config("caption", config)
    captioned = caption(versioned_curated, config=caption_config, progress=progress)
    gated_captioned = quality_gate(captioned, config=caption_config, stage="caption", id="gate_caption")
    versioned_captioned = version_dataset(gated_captioned, config=caption_config, stage="caption",
                                          id="version_caption")
    upsample_config = stage_config("upsample", config)
    # the upsampler asks for a GPU only when the run configures a diffusion checkpoint
    upsampled = upsample.with_options(settings=step_settings(UPSAMPLE, config_from_dict(config)))(
        versioned_captioned, config=upsample_config, progress=progress)
    gated_upsampled = quality_gate(upsampled, config=upsample_config, stage="upsample", id="gate_upsample")
    versioned_upsampled = version_dataset(gated_upsampled, config=upsample_config, stage="upsample",
                                          id="version_upsample")
    package_config = stage_config("package", config)
    training_set, _ = package(versioned_upsampled, config=package_config, progress=progress)
    gated_training_set = quality_gate(training_set, config=package_config, stage="package", id="gate_package")
    version_dataset(gated_training_set, config=package_config, stage="package", id="version_package")
