"""CLIP-based judges: CLIP score (text faithfulness) and an aesthetic head (visual appeal).

Both read a transformers ``CLIPModel`` and its processor from ``evaluate.judges.clip_model`` (a
local folder in the embedded default's world; a hub id where the hub is reachable). The
aesthetic head is the LAION "improved aesthetic predictor" shape: linear layers applied in
sequence (that predictor has dropout but no activation between them) on the L2-normalised
image embedding, stored as ``layers.<i>.weight``/``bias`` (any prefix) or a single
``weight``/``bias``, in a ``.safetensors`` or ``.pth`` file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from photogenic.errors import ConfigError
from photogenic.evaluation.judges import TEXT_FAITHFULNESS, VISUAL_APPEAL
from photogenic.evaluation.prompts import Prompt


@dataclass
class ClipBackbone:
    model: Any
    processor: Any
    device: str

    @classmethod
    def load(cls, path: str, device: str = "cpu") -> ClipBackbone:
        from transformers import CLIPModel, CLIPProcessor

        from photogenic.evaluation.sampling import resolve_device

        try:
            model = CLIPModel.from_pretrained(path)
            processor = CLIPProcessor.from_pretrained(path)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"evaluate.judges.clip_model = {path!r} cannot be loaded as a CLIP model and "
                              f"processor ({exc}). Point it at a folder saved with CLIPModel.save_pretrained and "
                              "CLIPProcessor.save_pretrained.") from None
        device = resolve_device(device)
        return cls(model.eval().to(device), processor, device)

    def image_embeddings(self, images: list[Image.Image]):
        import torch

        inputs = self.processor(images=[im.convert("RGB") for im in images], return_tensors="pt").to(self.device)
        with torch.inference_mode():
            emb = _as_tensor(self.model.get_image_features(**inputs))
        return torch.nn.functional.normalize(emb.float(), dim=-1)

    def text_embeddings(self, texts: list[str]):
        import torch

        inputs = self.processor(text=texts, return_tensors="pt", padding=True, truncation=True).to(self.device)
        with torch.inference_mode():
            emb = _as_tensor(self.model.get_text_features(**inputs))
        return torch.nn.functional.normalize(emb.float(), dim=-1)


def _as_tensor(output: Any):
    """get_*_features returns a tensor, or (newer transformers) an output with pooler_output."""
    return output if hasattr(output, "dim") else output.pooler_output


class ClipScoreJudge:
    name = "clip_score"
    criterion = TEXT_FAITHFULNESS

    def __init__(self, backbone: ClipBackbone, tie_margin: float = 0.5):
        self.backbone = backbone
        self.tie_margin = tie_margin

    def score(self, images: list[Image.Image], prompts: list[Prompt]) -> list[float]:
        img = self.backbone.image_embeddings(images)
        txt = self.backbone.text_embeddings([p.prompt for p in prompts])
        cos = (img * txt).sum(dim=-1).clamp(min=0.0)
        return (100.0 * cos).cpu().tolist()


class AestheticHead:
    def __init__(self, layers: list[tuple[np.ndarray, np.ndarray]]):
        self.layers = layers

    @property
    def input_dim(self) -> int:
        return self.layers[0][0].shape[1]

    def __call__(self, embeddings: np.ndarray) -> np.ndarray:
        x = embeddings
        for weight, bias in self.layers:
            x = x @ weight.T + bias
        return x[:, 0]


_LAYER = re.compile(r"^(?P<prefix>.*?)(?P<index>\d+)\.weight$")


def load_aesthetic_head(path: str) -> AestheticHead:
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"evaluate.judges.aesthetic_head = {path!r} is not a file; set it to the head's "
                          ".safetensors or .pth weights.")
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
        layers = [(state[key], state.get(key[: -len("weight")] + "bias", np.zeros(state[key].shape[0], np.float32)))
                  for _, key in indexed]
    if not layers or layers[-1][0].shape[0] != 1:
        raise ConfigError(f"The aesthetic head {path} must be linear layers ending in one output "
                          "(keys 'weight'/'bias' or '<prefix><i>.weight'/'bias').")
    for (w1, _), (w2, _) in zip(layers, layers[1:]):
        if w1.shape[0] != w2.shape[1]:
            raise ConfigError(f"The aesthetic head {path} has layers that do not chain ({w1.shape} then {w2.shape}).")
    return AestheticHead([(w.astype(np.float32), b.astype(np.float32)) for w, b in layers])


class AestheticJudge:
    name = "aesthetic"
    criterion = VISUAL_APPEAL

    def __init__(self, backbone: ClipBackbone, head: AestheticHead, tie_margin: float = 0.05):
        self.backbone = backbone
        self.head = head
        self.tie_margin = tie_margin

    def score(self, images: list[Image.Image], prompts: list[Prompt]) -> list[float]:
        emb = self.backbone.image_embeddings(images).cpu().numpy()
        if emb.shape[1] != self.head.input_dim:
            raise ConfigError(f"The aesthetic head expects {self.head.input_dim}-d CLIP embeddings but "
                              f"evaluate.judges.clip_model gives {emb.shape[1]}-d ones; use the CLIP model the head "
                              "was trained on.")
        return self.head(emb).astype(float).tolist()
