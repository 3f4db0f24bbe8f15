"""Caption conditioning for the U-Net, computed by the pipeline's own ``encode_prompt``.

Using the pipeline's encoder path means a model is trained on exactly the embeddings it sees
when sampling (SD: one encoder's token states; SDXL: both encoders' penultimate states
concatenated, the second encoder's pooled projection, and the size/crop time ids). The text
encoders are frozen, so a caption's embedding never changes: it is computed once and cached.
"""

from __future__ import annotations

import torch

from photogenic.models import layout


class Conditioner:
    def __init__(self, pipe, resolution: int, device: torch.device, cache_size: int = 20_000):
        self.pipe = pipe
        self.layout = layout(pipe)
        self.resolution = resolution
        self.device = device
        self.cache_size = cache_size
        self._cache: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = {}

    @torch.no_grad()
    def _encode(self, captions: list[str]) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        if self.layout == "sdxl":
            embeds, _, pooled, _ = self.pipe.encode_prompt(
                captions, device=self.device, num_images_per_prompt=1, do_classifier_free_guidance=False)
            return [(e.cpu(), p.cpu()) for e, p in zip(embeds, pooled)]
        embeds, _ = self.pipe.encode_prompt(captions, self.device, 1, False)
        return [(e.cpu(), None) for e in embeds]

    def __call__(self, captions: list[str], resolution: int | None = None) -> dict[str, torch.Tensor | dict]:
        """U-Net keyword arguments for a batch of captions (of images ``resolution`` pixels square,
        the model's own by default)."""
        missing = list(dict.fromkeys(c for c in captions if c not in self._cache))
        if missing:
            if len(self._cache) + len(missing) > self.cache_size:
                self._cache.clear()
            self._cache.update(zip(missing, self._encode(missing)))
        embeds = torch.stack([self._cache[c][0] for c in captions]).to(self.device)
        kwargs: dict = {"encoder_hidden_states": embeds}
        if self.layout == "sdxl":
            pooled = torch.stack([self._cache[c][1] for c in captions]).to(self.device)
            kwargs["added_cond_kwargs"] = {"text_embeds": pooled, "time_ids": self.time_ids(len(captions), resolution)}
        return kwargs

    def time_ids(self, batch: int, resolution: int | None = None) -> torch.Tensor:
        """SDXL's micro-conditioning: original size, crop offset, target size (square, uncropped)."""
        size = (resolution or self.resolution,) * 2
        ids = self.pipe._get_add_time_ids(
            size, (0, 0), size, dtype=torch.float32,
            text_encoder_projection_dim=self.pipe.text_encoder_2.config.projection_dim)
        return ids.repeat(batch, 1).to(self.device)
