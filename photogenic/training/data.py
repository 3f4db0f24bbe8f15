"""Training data from a photogenic Dataset: captioned images read one ranged read at a time.

Nothing is loaded whole: the manifest columns needed (where each image lives, its caption, its
split) are read once, and each image is read from its shard when a DataLoader worker asks for it.

The order is a pure function of (seed, epoch): ``ResumableSampler`` walks an endless sequence
of per-epoch permutations from a position it is given, so a resumed run reads exactly the
samples the interrupted one would have read next, and each process of a DDP run reads its own
stride of the same sequence.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset as TorchDataset
from torch.utils.data import Sampler

from photogenic.dataset.store import Dataset
from photogenic.errors import DataError
from photogenic.imaging.decode import decode_rgb

log = logging.getLogger(__name__)

_LOCATION = ["sample_id", "shard", "offset", "length"]


def read_rows(dataset: Dataset, caption_column: str) -> list[dict]:
    """The rows to train on: location, caption (missing -> ''), and split where the dataset has one."""
    schema = dataset.manifest_schema()
    if caption_column not in schema.names:
        raise DataError(
            f"Dataset {dataset.name!r} has no caption column {caption_column!r} (its columns: "
            f"{', '.join(schema.names)}). Set caption_column in the training stage's config."
        )
    columns = _LOCATION + [caption_column] + (["split"] if "split" in schema.names else [])
    rows = dataset.read_manifest(columns=columns).to_pylist()
    for row in rows:
        row["caption"] = row.pop(caption_column) or ""  # a missing caption trains as the unconditional one
    return rows


def split_rows(rows: list[dict], validation_fraction: float) -> tuple[list[dict], list[dict]]:
    """(train, validation). A ``split`` column decides where there is one (the packaged training
    set's contract); otherwise a stable share of rows, chosen by a hash of the sample id, is held
    out, so the same rows are held out in every run."""
    if rows and "split" in rows[0]:
        train = [r for r in rows if r["split"] == "train"]
        validation = [r for r in rows if r["split"] == "validation"]
    else:
        cut = int(validation_fraction * 2**32)
        held = [int(hashlib.sha256(r["sample_id"].encode()).hexdigest()[:8], 16) < cut for r in rows]
        train = [r for r, h in zip(rows, held) if not h]
        validation = [r for r, h in zip(rows, held) if h]
    if not train:
        raise DataError("The training dataset has no training rows (split == 'train', or after the held-out share).")
    return train, validation


def square_pixels(image: Image.Image, resolution: int) -> np.ndarray:
    """Centre crop to a square and resize to ``resolution`` (area-averaging, as a camera would):
    uint8, height x width x channels."""
    w, h = image.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    return np.asarray(image.crop((left, top, left + side, top + side)).resize((resolution, resolution), Image.BOX))


def pixels_to_tensor(pixels: np.ndarray) -> torch.Tensor:
    """uint8 HWC -> float [-1, 1], channels first."""
    array = pixels.astype(np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def to_tensor(image: Image.Image, resolution: int) -> torch.Tensor:
    """Centre crop to a square, resize to ``resolution``, scale to [-1, 1], channels first."""
    return pixels_to_tensor(square_pixels(image, resolution))


class CaptionedImages(TorchDataset):
    """Map-style view over manifest rows; images are read lazily, in whichever worker asks.

    Decoded, resized images are kept in memory, as uint8 at the training resolution, up to
    ``cache_mb`` per process: a set that fits (the embedded pool is 11 MB at 32 px, a curated
    set of thousands a few hundred MB at 256 px) is decoded once instead of once per epoch, which
    on 2 CPU cores is a tenth of a low-resolution training step. The crop is deterministic, so a
    cached image is the same pixels a fresh decode gives. 0 turns the cache off; a pool larger
    than the budget caches the images it met first and streams the rest.

    ``keyed``: each item also carries ``key``, the sha256 of the image bytes read, which names it
    in the latent cache (``photogenic.training.latents``); an image whose key is in ``skip`` (its
    latents are cached) is read and hashed but not decoded, and its item has no pixels.
    """

    def __init__(self, dataset_path: str, rows: list[dict], resolution: int, cache_mb: float = 0,
                 keyed: bool = False, skip: frozenset[str] = frozenset()):
        self.dataset_path = dataset_path
        self.rows = rows
        self.resolution = resolution
        self.keyed = keyed
        self.skip = skip
        self._dataset: Dataset | None = None  # opened per worker process
        self._cache_left = int(cache_mb * 2**20)
        self._cache: dict[int, np.ndarray] = {}  # per process: each DataLoader worker fills its own
        self._keys: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict:
        row = self.rows[index]
        item = {"caption": row["caption"], "index": index, "size": self.resolution, "pixels": None,
                "key": self._keys.get(index)}
        if item["key"] in self.skip:
            return item
        pixels = self._cache.get(index)
        if pixels is None:
            if self._dataset is None:
                self._dataset = Dataset(self.dataset_path)
            data = self._dataset.image_bytes(row)
            if self.keyed:
                item["key"] = self._keys[index] = hashlib.sha256(data).hexdigest()
                if item["key"] in self.skip:
                    return item
            pixels = square_pixels(decode_rgb(data), self.resolution)
            if pixels.nbytes <= self._cache_left:
                self._cache[index] = pixels
                self._cache_left -= pixels.nbytes
        item["pixels"] = pixels_to_tensor(pixels)
        return item


def collate(items: list[dict]) -> dict:
    """A batch: ``pixels`` stacks the items that have pixels (all of them unless the latent cache
    let the loader skip some; ``has_pixels`` says which), in batch order."""
    with_pixels = [i["pixels"] for i in items if i["pixels"] is not None]
    return {
        "pixels": torch.stack(with_pixels) if with_pixels else None,
        "has_pixels": torch.tensor([i["pixels"] is not None for i in items]),
        "caption": [i["caption"] for i in items],
        "key": [i["key"] for i in items],
        "index": torch.tensor([i["index"] for i in items]),
        "size": items[0]["size"],
    }


class ResumableSampler(Sampler[int]):
    """Endless per-epoch permutations of ``range(n)``, starting at global position ``start``
    (samples already consumed by all processes), this process taking every ``world``-th one."""

    def __init__(self, n: int, seed: int, start: int = 0, rank: int = 0, world: int = 1):
        self.n, self.seed, self.start, self.rank, self.world = n, seed, start, rank, world

    def permutation(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(self.n)

    def __iter__(self) -> Iterator[int]:
        position = self.start + self.rank
        epoch, order = -1, None
        while True:
            current, offset = divmod(position, self.n)
            if current != epoch:
                epoch, order = current, self.permutation(current)
            yield int(order[offset])
            position += self.world

    def __len__(self) -> int:  # endless; DataLoader only needs this for its progress estimate
        return 2**62
