"""The data curation pipeline: sources → ingested dataset → candidate pool → curated set (two
human stages; SIMULATED annotators on the sample pool) → captioned set → upsampled set →
packaged training set. Each stage's output passes its quality gate and is versioned before the
next stage reads it.
"""

from __future__ import annotations

from zenml import pipeline

from photogenic.config import config_from_dict

from steps.auto_filter import auto_filter
from steps.caption import caption
from steps.curation import curation
from steps.ingest import ingest
from steps.package import package
from steps.quality_gate import quality_gate
from steps.settings import step_settings
from steps.upsample import SPEC as UPSAMPLE
from steps.upsample import upsample
from steps.version_dataset import version_dataset


@pipeline(enable_cache=False)
def data_curation(config: dict, progress: bool = True) -> None:
    ingested = ingest(config=config, progress=progress)
    gated = quality_gate(ingested, config=config, stage="ingest", id="gate_ingest")
    versioned = version_dataset(gated, config=config, stage="ingest", id="version_ingest")
    candidates, _ = auto_filter(versioned, config=config, progress=progress)
    gated_candidates = quality_gate(candidates, config=config, stage="auto_filter", id="gate_auto_filter")
    versioned_candidates = version_dataset(gated_candidates, config=config, stage="auto_filter",
                                           id="version_auto_filter")
    curated = curation(versioned_candidates, config=config, progress=progress)
    gated_curated = quality_gate(curated, config=config, stage="curation", id="gate_curation")
    versioned_curated = version_dataset(gated_curated, config=config, stage="curation", id="version_curation")
    captioned = caption(versioned_curated, config=config, progress=progress)
    gated_captioned = quality_gate(captioned, config=config, stage="caption", id="gate_caption")
    versioned_captioned = version_dataset(gated_captioned, config=config, stage="caption", id="version_caption")
    # the upsampler asks for a GPU only when the run configures a diffusion checkpoint
    upsampled = upsample.with_options(settings=step_settings(UPSAMPLE, config_from_dict(config)))(
        versioned_captioned, config=config, progress=progress)
    gated_upsampled = quality_gate(upsampled, config=config, stage="upsample", id="gate_upsample")
    versioned_upsampled = version_dataset(gated_upsampled, config=config, stage="upsample", id="version_upsample")
    training_set, _ = package(versioned_upsampled, config=config, progress=progress)
    gated_training_set = quality_gate(training_set, config=config, stage="package", id="gate_package")
    version_dataset(gated_training_set, config=config, stage="package", id="version_package")
