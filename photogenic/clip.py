"""CLIP and the aesthetic head, for everything that needs them: the auto-filter's CLIP-score,
aesthetic and concept scorers, and the evaluation's clip_score and aesthetic judges.

A CLIP checkpoint is a Hugging Face hub id or a local folder holding a ``CLIPModel`` and its
processor (tokenizer + image processor), as ``save_pretrained`` writes them; a checkpoint that
cannot be loaded is a ConfigError naming the config key that set it. Embeddings are unit-length
numpy rows. Nothing is downloaded in tests: they save a tiny CLIP built from a config with random
weights.

The aesthetic head is the LAION "improved aesthetic predictor" shape: linear layers applied in
sequence (that predictor has dropouts but no activation between them) on the unit-length image
embedding, predicting a 1-10 rating. Its weights are ``layers.<i>.weight``/``bias`` (any prefix,
LAION's MLP state dict among them) or a single ``weight``/``bias``, in a ``.safetensors`` or
``.pth`` file.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from photogenic.errors import ConfigError


@dataclass
class Clip:
    model: Any
    processor: Any
    device: str = "cpu"

    def image_embeddings(self, images: list[np.ndarray] | list[Image.Image]) -> np.ndarray:
        """Unit-length image embeddings, one row per image (HxWx3 uint8 arrays or PIL images)."""
        import torch

        if not images:
            return np.zeros((0, self.embedding_dim), np.float32)
        arrays = [_displayable(np.asarray(im.convert("RGB")) if isinstance(im, Image.Image) else im) for im in images]
        inputs = self.processor(images=arrays, return_tensors="pt")
        with torch.inference_mode():
            out = self.model.get_image_features(pixel_values=inputs["pixel_values"].to(self.device))
        return _unit(_features(out))

    def text_embeddings(self, texts: list[str]) -> np.ndarray:
        import torch

        inputs = self.processor(text=texts, return_tensors="pt", padding=True, truncation=True,
                                max_length=self.model.config.text_config.max_position_embeddings)
        with torch.inference_mode():
            out = self.model.get_text_features(input_ids=inputs["input_ids"].to(self.device),
                                               attention_mask=inputs["attention_mask"].to(self.device))
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
            "null to run without CLIP."
        )
    try:
        from transformers import CLIPConfig

        # read at call time (the hub client reads it once, at import): offline means no request at all
        CLIPConfig.from_pretrained(resolved, local_files_only=hub_offline())
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"The CLIP checkpoint {value!r} ({key}) cannot be loaded: {str(exc).splitlines()[0]} Set {key} to a "
            "local folder holding a CLIPModel saved with save_pretrained, or a hub id available offline "
            "(HF_HUB_OFFLINE), or to null to run without CLIP."
        ) from None
    return resolved


def projection_dim(checkpoint: str) -> int:
    """The embedding size of ``checkpoint``, read from its config alone."""
    from transformers import CLIPConfig

    return int(CLIPConfig.from_pretrained(checkpoint, local_files_only=hub_offline()).projection_dim)


@lru_cache(maxsize=2)
def load_clip(checkpoint: str, key: str, device: str = "cpu") -> Clip:
    """Load once per process and device (the CLIP score, aesthetic and concept scorers share one
    model). ``key``: the config key that names the checkpoint, for the error."""
    from transformers import CLIPModel, CLIPProcessor

    offline = hub_offline()
    try:
        model = CLIPModel.from_pretrained(checkpoint, local_files_only=offline)
        processor = CLIPProcessor.from_pretrained(checkpoint, local_files_only=offline)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{key} = {checkpoint!r} cannot be loaded as a CLIP model and processor "
                          f"({str(exc).splitlines()[0]}). Point it at a folder saved with CLIPModel.save_pretrained "
                          "and CLIPProcessor.save_pretrained, or a hub id available offline.") from None
    return Clip(model.eval().to(device), processor, device)


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


class AestheticHead:
    """Linear layers applied in sequence to unit-length CLIP image embeddings; one rating per row."""

    def __init__(self, layers: list[tuple[np.ndarray, np.ndarray]]):
        self.layers = layers

    @property
    def input_dim(self) -> int:
        return self.layers[0][0].shape[1]

    def __call__(self, embeddings: np.ndarray) -> np.ndarray:
        x = embeddings.astype(np.float32, copy=False)
        for weight, bias in self.layers:
            x = x @ weight.T + bias
        return x[:, 0]


_LAYER = re.compile(r"^(?P<prefix>.*?)(?P<index>\d+)\.weight$")


def load_aesthetic_head(path: str, key: str, dim: int | None = None) -> AestheticHead:
    """The head at ``path`` (``key``: the config key naming it, for errors); ``dim``: the CLIP
    embedding size it must take, checked here rather than at the first image."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"The aesthetic head {path!r} ({key}) is not a file: set {key} to the head's "
                          ".safetensors or .pth weights, or to null to run without it.")
    if file.suffix == ".safetensors":
        from safetensors.numpy import load_file

        state = load_file(str(file))
    else:
        import torch

        state = {k: v.float().numpy() for k, v in torch.load(str(file), map_location="cpu", weights_only=True).items()}
    if "weight" in state:
        layers = [(state["weight"], state.get("bias", np.zeros(state["weight"].shape[0], np.float32)))]
    else:
        indexed = sorted((int(m["index"]), key) for key in state if (m := _LAYER.match(key)))
        layers = [(state[name], state.get(name[: -len("weight")] + "bias", np.zeros(state[name].shape[0], np.float32)))
                  for _, name in indexed]
    if not layers or layers[-1][0].shape[0] != 1:
        raise ConfigError(f"The aesthetic head {path} ({key}) must be linear layers ending in one output "
                          "(keys 'weight'/'bias' or '<prefix><i>.weight'/'bias').")
    for (w1, _), (w2, _) in zip(layers, layers[1:]):
        if w1.shape[0] != w2.shape[1]:
            raise ConfigError(f"The aesthetic head {path} ({key}) has layers that do not chain "
                              f"({w1.shape} then {w2.shape}).")
    head = AestheticHead([(w.astype(np.float32), b.astype(np.float32)) for w, b in layers])
    if dim is not None and head.input_dim != dim:
        raise ConfigError(f"The aesthetic head {path} ({key}) takes {head.input_dim}-d CLIP embeddings, but the "
                          f"configured CLIP model gives {dim}-d ones: use the CLIP model the head was trained on.")
    return head


def _features(out: Any) -> np.ndarray:
    # transformers 5 returns the projected embedding as the output's pooler_output
    tensor = out.pooler_output if hasattr(out, "pooler_output") else out
    return tensor.float().cpu().numpy()


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
