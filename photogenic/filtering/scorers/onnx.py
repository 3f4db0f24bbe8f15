"""Settings shared by the scorers whose models run in onnxruntime."""

from __future__ import annotations

from typing import Any


def single_threaded() -> dict[str, Any]:
    """One intra-op and one inter-op thread: the cascade already runs one worker process per
    core, and onnxruntime's default (a thread per core in every worker) oversubscribes them."""
    return {"intra_op_num_threads": 1, "inter_op_num_threads": 1}


def session(model_path: str):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    for key, value in single_threaded().items():
        setattr(options, key, value)
    return onnxruntime.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
