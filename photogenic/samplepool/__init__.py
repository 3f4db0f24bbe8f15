"""The embedded synthetic image–text pool: img2dataset-style WebDataset shards of drawn scenes
with known quality defects, plus a hidden ground truth for simulated annotators and benchmarks.

    from photogenic.samplepool import generate_sample_pool
    summary = generate_sample_pool("data/raw/sample-pool", n=4000, seed=0)

Modules: ``world`` (vocabulary, scene sampling), ``render`` (drawing), ``defects`` (applying
defects), ``captions`` (alt-text and scene captions), ``plan`` (which sample gets which defect),
``sample`` (one sample from its coordinates), ``writer`` (shards), ``generate`` (entry point).
"""

from photogenic.samplepool.generate import GENERATOR_VERSION, SamplePoolSummary, generate_sample_pool
from photogenic.samplepool.spec import CAPTION_DEFECTS, DEFECTS, IMAGE_DEFECTS, SamplePoolError, SamplePoolSpec

__all__ = [
    "CAPTION_DEFECTS",
    "DEFECTS",
    "GENERATOR_VERSION",
    "IMAGE_DEFECTS",
    "SamplePoolError",
    "SamplePoolSpec",
    "SamplePoolSummary",
    "generate_sample_pool",
]
