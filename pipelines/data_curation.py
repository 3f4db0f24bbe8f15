"""The data curation pipeline: sources → ingested dataset → candidate pool (each gated and
versioned).

Later stages (curation, captions, upsampling, packaging) extend this chain; each
stage's output passes its quality gate and is versioned before the next stage reads it.
"""

from __future__ import annotations

from zenml import pipeline

from steps.auto_filter import auto_filter
from steps.cache import stage_config, stage_external_md5s
from steps.ingest import ingest
from steps.quality_gate import quality_gate
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
    version_dataset(gated_candidates, config=filter_config, stage="auto_filter", id="version_auto_filter")
