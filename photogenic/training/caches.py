"""Where the trainer's on-disk caches live, and what makes an entry stale.

    <dataset>.cache/latents/<autoencoder fingerprint>-<resolution>px/part-*.safetensors
    <dataset>.cache/text/<text encoder fingerprint>/part-*.safetensors

Beside the dataset folder, not inside it, as the quality gate's docs are: the dataset's DVC md5
must not change because a run cached something, and deleting ``<dataset>.cache`` at any time
only costs the next run its encoding.

An entry can only be read back by the model and the input that made it. The folder names the
model: a fingerprint of the autoencoder (or text encoders: weights, config, tokenizer) and, for
latents, the resolution, so another autoencoder or resolution reads another folder and never
another's latents. Within a folder an entry is named by the sha256 of what was encoded: the bytes
of the image the trainer read (the packaged image, which is not the original whose sha256 is
the sample_id) or the caption's text, so a changed image or caption is a new entry, and the old
one is never read again.
"""

from __future__ import annotations

import hashlib
import json

import torch

from photogenic.paths import join
from photogenic.training.tensor_store import TensorStore

#: elements read from each weight tensor for the fingerprint, besides its sum
_SAMPLED = 1024


def cache_root(dataset_path: str) -> str:
    return f"{dataset_path.rstrip('/')}.cache"


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def module_fingerprint(*parts) -> str:
    """sha256 over models (class, config, weights) and plain values, read cheaply.

    Hashing every byte of the weights would add seconds (a T5-XXL text encoder holds 19 GB) to
    every start; instead each tensor contributes its name, shape, dtype, its sum in float64 (any
    change to any one weight moves it) and up to 1,024 evenly spaced elements (a change that
    keeps the sum, such as swapped weights, moves those).
    """
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, torch.nn.Module):
            digest.update(type(part).__name__.encode())
            config = getattr(part, "config", None)
            if config is not None:
                as_dict = config.to_dict() if hasattr(config, "to_dict") else dict(config)
                digest.update(json.dumps(as_dict, sort_keys=True, default=str).encode())
            with torch.no_grad():
                for name, tensor in part.state_dict().items():
                    flat = tensor.detach().reshape(-1)
                    digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}:".encode())
                    if flat.numel() == 0:
                        continue
                    digest.update(repr(flat.sum(dtype=torch.float64).item()).encode())
                    step = max(1, flat.numel() // _SAMPLED)
                    digest.update(flat[::step][:_SAMPLED].double().cpu().numpy().tobytes())
        else:
            digest.update(json.dumps(part, sort_keys=True, default=str).encode())
        digest.update(b"\0")
    return digest.hexdigest()


def latent_store(dataset_path: str, autoencoder: torch.nn.Module, resolution: int) -> TensorStore:
    """The latent cache of ``dataset_path`` for this autoencoder at this resolution."""
    fingerprint = module_fingerprint(autoencoder)
    folder = join(cache_root(dataset_path), "latents", f"{fingerprint[:16]}-{resolution}px")
    return TensorStore(folder, {"content": "latent distributions: mean and std stacked, scaled by the autoencoder's "
                                "scaling_factor; named by the sha256 of the image bytes (+ '.flip')",
                                "autoencoder": fingerprint, "resolution": str(resolution)})


def text_store(dataset_path: str, fingerprint: str) -> TensorStore:
    """The caption-embedding cache of ``dataset_path`` for the text conditioning ``fingerprint``."""
    folder = join(cache_root(dataset_path), "text", fingerprint[:16])
    return TensorStore(folder, {"content": "caption embeddings named by the sha256 of the caption (+ '.pooled')",
                                "text_encoders": fingerprint})
