"""CLIP through transformers, for the scorers that need it (CLIP score, aesthetic head, concept
zero-shot): loading a configured checkpoint with a clear error when it is missing, and
normalised image / text embeddings.

A checkpoint is a Hugging Face hub id or a local folder holding a ``CLIPModel`` and its
processor (tokenizer + image processor), as ``save_pretrained`` writes them. Nothing is
downloaded in tests: they save a tiny CLIP built from a config with random weights.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from photogenic.errors import ConfigError


@dataclass
class Clip:
    model: Any
    processor: Any

    def image_embeddings(self, images: list[np.ndarray]) -> np.ndarray:
        """Unit-length image embeddings, one row per HxWx3 uint8 image."""
        import torch

        inputs = self.processor(images=[_displayable(im) for im in images], return_tensors="pt")
        with torch.inference_mode():
            out = self.model.get_image_features(pixel_values=inputs["pixel_values"])
        return _unit(_features(out))

    def text_embeddings(self, texts: list[str]) -> np.ndarray:
        import torch

        inputs = self.processor(text=texts, return_tensors="pt", padding=True, truncation=True,
                                max_length=self.model.config.text_config.max_position_embeddings)
        with torch.inference_mode():
            out = self.model.get_text_features(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
        return _unit(_features(out))

    @property
    def embedding_dim(self) -> int:
        return int(self.model.config.projection_dim)


def resolve_checkpoint(value: str, data_root: str) -> str:
    """A relative local path lives under data.root; anything else (a hub id) is left alone."""
    if os.path.isabs(value) or os.path.exists(value):
        return value
    under_root = os.path.join(data_root, value)
    return under_root if os.path.exists(under_root) else value


def check_checkpoint(value: str, key: str, data_root: str) -> str:
    """The checkpoint to load, or a ConfigError naming ``key`` when it cannot be: a local path
    that does not exist, or a hub id that is not in the local cache while the hub is out of reach."""
    resolved = resolve_checkpoint(value, data_root)
    looks_local = os.path.isabs(value) or value.startswith((".", "~")) or value.count("/") > 1
    if looks_local and not os.path.exists(resolved):
        raise ConfigError(
            f"The CLIP checkpoint {value!r} ({key}) does not exist. Set {key} to a local folder holding a "
            "CLIPModel saved with save_pretrained (and its processor), or a Hugging Face hub id; set it to "
            "null to run the filter without CLIP."
        )
    try:
        from transformers import CLIPConfig

        # read at call time (the hub client reads it once, at import): offline means no request at all
        CLIPConfig.from_pretrained(resolved, local_files_only=hub_offline())
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"The CLIP checkpoint {value!r} ({key}) cannot be loaded: {str(exc).splitlines()[0]} Set {key} to a "
            "local folder holding a CLIPModel saved with save_pretrained, or a hub id available offline "
            "(HF_HUB_OFFLINE), or to null to run the filter without CLIP."
        ) from None
    return resolved


@lru_cache(maxsize=2)
def load_clip(checkpoint: str) -> Clip:
    """Load once per process (the CLIP score, aesthetic and concept scorers share one model)."""
    import torch
    from transformers import CLIPModel, CLIPProcessor

    torch.set_num_threads(1)  # one worker process per core already
    offline = hub_offline()
    model = CLIPModel.from_pretrained(checkpoint, local_files_only=offline).eval()
    return Clip(model, CLIPProcessor.from_pretrained(checkpoint, local_files_only=offline))


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _features(out: Any) -> np.ndarray:
    # transformers 5 returns the projected embedding as the output's pooler_output
    tensor = out.pooler_output if hasattr(out, "pooler_output") else out
    return tensor.float().numpy()


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _displayable(image: np.ndarray) -> np.ndarray:
    """The image processor resizes by the short side; a 1-pixel-wide sliver would become an
    enormous array, so such images are padded to a square first (their score is meaningless
    anyway, but must not crash or blow up memory)."""
    h, w = image.shape[:2]
    if max(h, w) <= 8 * max(1, min(h, w)):
        return image
    side = max(h, w)
    canvas = np.zeros((side, side, 3), np.uint8)
    canvas[:h, :w] = image
    return canvas
