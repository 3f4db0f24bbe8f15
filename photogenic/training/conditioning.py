"""Caption conditioning for the U-Net, computed by the pipeline's own ``encode_prompt``.

Using the pipeline's encoder path means a model is trained on exactly the embeddings it sees
when sampling (SD: one encoder's token states; SDXL: both encoders' penultimate states
concatenated, the second encoder's pooled projection, and the size/crop time ids). The text
encoders are frozen, so a caption's embedding never changes: it is computed once and kept in
memory, and, with a ``store`` (``text_embedding_cache``), on disk beside the dataset, named by
the sha256 of the caption, so later runs with the same encoders do not run them at all. The
empty caption that caption dropout trains on is one more caption, cached like the others.
"""

from __future__ import annotations

import json

import torch

from photogenic.models import layout
from photogenic.training.caches import module_fingerprint, sha256_text
from photogenic.training.tensor_store import TensorStore

POOLED = ".pooled"


def text_fingerprint(pipe) -> str:
    """What a caption's embedding depends on: the text encoders, the tokenizers' vocabularies
    and lengths, and the pipeline layout that combines them."""
    parts: list = [type(pipe).__name__]
    for name in ("text_encoder", "text_encoder_2"):
        if getattr(pipe, name, None) is not None:
            parts.append(getattr(pipe, name))
    for name in ("tokenizer", "tokenizer_2"):
        tokenizer = getattr(pipe, name, None)
        if tokenizer is not None:
            vocabulary = json.dumps(tokenizer.get_vocab(), sort_keys=True)
            parts.append([type(tokenizer).__name__, tokenizer.model_max_length, sha256_text(vocabulary)])
    return module_fingerprint(*parts)


class Conditioner:
    def __init__(self, pipe, resolution: int, device: torch.device, cache_size: int = 20_000,
                 store: TensorStore | None = None):
        self.pipe = pipe
        self.layout = layout(pipe)
        self.resolution = resolution
        self.device = device
        self.cache_size = cache_size
        self.store = store
        self._cache: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = {}

    @torch.no_grad()
    def _encode(self, captions: list[str]) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        if self.layout == "sdxl":
            embeds, _, pooled, _ = self.pipe.encode_prompt(
                captions, device=self.device, num_images_per_prompt=1, do_classifier_free_guidance=False)
            return [(e.cpu(), p.cpu()) for e, p in zip(embeds, pooled)]
        embeds, _ = self.pipe.encode_prompt(captions, self.device, 1, False)
        return [(e.cpu(), None) for e in embeds]

    def _stored(self, caption: str) -> tuple[torch.Tensor, torch.Tensor | None] | None:
        if self.store is None:
            return None
        name = sha256_text(caption)
        if name not in self.store:
            return None
        return self.store.get(name), self.store.get(name + POOLED) if self.layout == "sdxl" else None

    def _fill(self, captions: list[str]) -> None:
        """Bring every caption's embedding into memory: from the store, else encoded (and stored)."""
        missing = list(dict.fromkeys(c for c in captions if c not in self._cache))
        if not missing:
            return
        if len(self._cache) + len(missing) > self.cache_size:
            self._cache.clear()
        found = {c: e for c in missing if (e := self._stored(c)) is not None}
        self._cache.update(found)
        encode = [c for c in missing if c not in found]
        if not encode:
            return
        for caption, (embeds, pooled) in zip(encode, self._encode(encode)):
            self._cache[caption] = (embeds, pooled)
            if self.store is not None:
                name = sha256_text(caption)
                self.store.add(name, embeds)
                if pooled is not None:
                    self.store.add(name + POOLED, pooled)

    def __call__(self, captions: list[str], resolution: int | None = None) -> dict[str, torch.Tensor | dict]:
        """U-Net keyword arguments for a batch of captions (of images ``resolution`` pixels square,
        the model's own by default)."""
        self._fill(captions)
        embeds = torch.stack([self._cache[c][0] for c in captions]).to(self.device)
        kwargs: dict = {"encoder_hidden_states": embeds}
        if self.layout == "sdxl":
            pooled = torch.stack([self._cache[c][1] for c in captions]).to(self.device)
            kwargs["added_cond_kwargs"] = {"text_embeds": pooled, "time_ids": self.time_ids(len(captions), resolution)}
        return kwargs

    def flush(self) -> None:
        """Write the embeddings encoded since the last flush to the store."""
        if self.store is not None:
            self.store.flush()

    def time_ids(self, batch: int, resolution: int | None = None) -> torch.Tensor:
        """SDXL's micro-conditioning: original size, crop offset, target size (square, uncropped)."""
        size = (resolution or self.resolution,) * 2
        ids = self.pipe._get_add_time_ids(
            size, (0, 0), size, dtype=torch.float32,
            text_encoder_projection_dim=self.pipe.text_encoder_2.config.projection_dim)
        return ids.repeat(batch, 1).to(self.device)
