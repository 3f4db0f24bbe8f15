"""The latents a training batch denoises, from the latent cache where it has them.

A latent-space model trains on draws of its autoencoder's latent distribution. Quality-tuning
sees the same few thousand images for thousands of steps, so encoding them every step repeats
the same work (a sixth of a step on the small reference model); with the cache on, each image is
encoded once per autoencoder and resolution, the first time a batch holds it, and kept beside
the dataset (``photogenic.training.caches``), so later epochs and later runs read it back and
the data loader no longer even decodes it.

What is cached is the distribution (mean and std), not a draw: every step draws its latent from
it with the micro-batch's generator, as encoding every step does, so a run from the cache trains
the same model as one without it, up to float noise, and keeps the autoencoder's sampling noise.

Flips (``random_flip``) are cached as a second variant, the latent of the mirrored image (an
autoencoder is not mirror-symmetric, so the mirrored latent of the image would be another
input): twice the disk. Crops are not random: the trainer centre-crops, and the packaged
training set is already cropped to its buckets, so each image has one crop to cache.

Disk (and memory: a run holds its cache in memory): 2 x latent channels x (resolution / 8)^2 x 4
bytes an image and variant with an 8x autoencoder: 128 KiB at 256 px with 16 channels, 2 MiB
at 1024 px; 2,000 curated images at 256 px: 256 MiB, 512 MiB with flips.

Pixel space has no autoencoder: there the latents are the pixels, which the decoded-image cache
already keeps (as uint8), and nothing is written.
"""

from __future__ import annotations

import torch

from photogenic.models import draw_latents, is_pixel_space, latent_distribution
from photogenic.training.caches import latent_store
from photogenic.training.tensor_store import TensorStore

FLIP = ".flip"


class Latents:
    """Latents for the batches of one resolution; cached when ``cache`` and the model has an
    autoencoder."""

    def __init__(self, pipe, device: torch.device, dataset_path: str, resolution: int, cache: bool, flips: bool):
        self.pipe = pipe
        self.device = device
        self.flips = flips
        self.store: TensorStore | None = None
        if cache and not is_pixel_space(pipe):
            self.store = latent_store(dataset_path, pipe.vae, resolution)
        #: images encoded by this process, and batch items read from the cache
        self.encoded = 0
        self.hits = 0

    @property
    def keyed(self) -> bool:
        """Whether batches must name their images (by the sha256 of their bytes) for the cache."""
        return self.store is not None

    def cached_keys(self) -> frozenset[str]:
        """Images whose every variant a batch can ask for is cached: the loader need not decode them."""
        if self.store is None:
            return frozenset()
        names = self.store.names()
        keys = {n for n in names if not n.endswith(FLIP)}
        if self.flips:
            keys = {k for k in keys if k + FLIP in names}
        return frozenset(keys)

    def __call__(self, batch: dict, generator: torch.Generator, flip: torch.Tensor | None = None) -> torch.Tensor:
        """One draw of each item's latent (mirrored where ``flip`` says), noise from ``generator``."""
        n = len(batch["caption"])
        flipped = flip.tolist() if flip is not None else [False] * n
        names = [None] * n
        if self.store is not None:
            names = [key + (FLIP if f else "") for key, f in zip(batch["key"], flipped)]
        found = [self.store.get(name) if self.store is not None and name in self.store else None for name in names]
        missing = [i for i, d in enumerate(found) if d is None]
        self.hits += n - len(missing)
        if missing:
            pixels = _pixels_of(batch, missing).to(self.device)
            mirror = torch.tensor([flipped[i] for i in missing])
            if mirror.any():
                pixels[mirror] = pixels[mirror].flip(-1)
            mean, std = latent_distribution(self.pipe, pixels)
            if std is None:  # pixel space: the latents are the pixels (never cached, so all of them)
                return mean
            self.encoded += len(missing)
            for j, i in enumerate(missing):
                found[i] = torch.stack([mean[j], std[j]])
                if self.store is not None:
                    self.store.add(names[i], found[i])
        stacked = torch.stack([d.to(self.device) for d in found])
        return draw_latents(stacked[:, 0], stacked[:, 1], generator)

    def flush(self) -> None:
        """Write what this process encoded since the last flush (at checkpoints and at the end)."""
        if self.store is not None:
            self.store.flush()


def _pixels_of(batch: dict, items: list[int]) -> torch.Tensor:
    """The pixels of batch items ``items``; ``batch["pixels"]`` holds only the items that have
    pixels (``batch["has_pixels"]``), in batch order."""
    has = batch["has_pixels"]
    row = torch.cumsum(has.long(), 0) - 1
    if not bool(has[items].all()):
        raise RuntimeError("a batch item without pixels is not in the latent cache (was the cache changed "
                           "while training?)")
    return batch["pixels"][row[items]]
