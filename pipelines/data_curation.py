"""The data curation pipeline: sources → ingested dataset → candidate pool (each gated and
versioned).

Later stages (curation, captions, upsampling, packaging) extend this chain; each
stage's output passes its quality gate and is versioned before the next stage reads it.
"""

from __future__ import annotations

from zenml import pipeline

from steps.auto_filter import auto_filter
from steps.ingest import ingest
from steps.quality_gate import quality_gate
from steps.version_dataset import version_dataset


@pipeline(enable_cache=False)
def data_curation(config: dict, progress: bool = True) -> None:
    ingested = ingest(config=config, progress=progress)
    gated = quality_gate(ingested, config=config, stage="ingest", id="gate_ingest")
    versioned = version_dataset(gated, config=config, stage="ingest", id="version_ingest")
    candidates, _ = auto_filter(versioned, config=config, progress=progress)
    gated_candidates = quality_gate(candidates, config=config, stage="auto_filter", id="gate_auto_filter")
    version_dataset(gated_candidates, config=config, stage="auto_filter", id="version_auto_filter")
