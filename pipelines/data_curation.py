"""The data curation pipeline: sources → ingested dataset (gated and versioned).

Later stages (auto-filter, curation, captions, upsampling, packaging) extend this chain; each
stage's output passes its quality gate and is versioned before the next stage reads it.
"""

from __future__ import annotations

from zenml import pipeline

from steps.ingest import ingest
from steps.quality_gate import quality_gate
from steps.version_dataset import version_dataset


@pipeline(enable_cache=False)
def data_curation(config: dict, progress: bool = True) -> None:
    ingested = ingest(config=config, progress=progress)
    gated = quality_gate(ingested, config=config, stage="ingest")
    version_dataset(gated, config=config, stage="ingest")
