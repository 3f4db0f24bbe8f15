"""Settings shared by the scorers whose models run in onnxruntime."""

from __future__ import annotations

from typing import Any


def single_threaded() -> dict[str, Any]:
    """One intra-op and one inter-op thread: the cascade already runs one worker process per
    core, and onnxruntime's default (a thread per core in every worker) oversubscribes them."""
    return {"intra_op_num_threads": 1, "inter_op_num_threads": 1}


def session(model_path: str, varying_shapes: bool = False):
    """A single-threaded CPU session. ``varying_shapes``: the input's shape changes from image to
    image, so neither cache per-shape memory plans nor keep an arena sized by the largest input:
    either would let a worker's memory grow with the number of distinct shapes it has seen."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    for key, value in single_threaded().items():
        setattr(options, key, value)
    if varying_shapes:
        options.enable_mem_pattern = False
        options.enable_cpu_mem_arena = False
    return onnxruntime.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
