"""The whole recipe, Emu's quality-tuning: the data curation chain (sources → packaged training
set) then the training chain (pretrain on the pool → quality-tune on the curated set → evaluate
→ promote), each training step reading the datasets the data chain versioned in this run.
"""

from __future__ import annotations

from zenml import pipeline

from pipelines.data_curation import curation_chain
from pipelines.training import training_chain


@pipeline(enable_cache=True)
def emu(config: dict, progress: bool = True) -> None:
    training_chain(config, curation_chain(config, progress), progress)
