"""The whole recipe, Emu's quality-tuning: the data curation chain (sources → packaged training
set) then the training chain (pretrain on the pool → quality-tune on the curated set → evaluate
→ promote), each training step reading the datasets the data chain versioned in this run.
"""

from __future__ import annotations

from zenml import pipeline

from pipelines.data_curation import curation_chain
from pipelines.training import training_chain
from steps.cache import external_md5s_by_stage


@pipeline(enable_cache=True)
def emu(config: dict, progress: bool = True, ray_job: str = "") -> None:
    """``ray_job``: an image; the data-plane stages then run as KubeRay RayJobs of it."""
    md5s = external_md5s_by_stage(config)  # the source shards hashed once for both chains
    training_chain(config, md5s, curation_chain(config, md5s, progress, ray_job), progress)
