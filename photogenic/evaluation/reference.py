"""The reference images FID/KID compare against: a photogenic dataset (the curated set) or a folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from photogenic.config import RunConfig
from photogenic.dataset.store import Dataset
from photogenic.errors import DataError
from photogenic.paths import dataset_dir, under_root

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
#: reference images are kept at most this large (Inception reads 299 px)
MAX_SIDE = 512


def reference_images(config: RunConfig, reference: str, limit: int, seed: int = 0) -> list[Image.Image]:
    """Up to ``limit`` images (a seeded random choice) of the dataset named ``reference`` under
    ``<data.root>/datasets``, or else of the folder ``reference`` (under ``data.root`` if relative)."""
    rng = np.random.default_rng(seed)
    dataset = Dataset(dataset_dir(config.data.root, reference), reference) if "/" not in reference else None
    if dataset is not None and dataset.exists():
        table = dataset.read_manifest(columns=["shard", "offset", "length"])
        rows = table.to_pylist()
        pick = sorted(rng.choice(len(rows), size=min(limit, len(rows)), replace=False).tolist())
        images = [dataset.load_image(rows[i]) for i in pick]
    else:
        folder = Path(under_root(config.data.root, reference, "FID reference"))
        if not folder.is_dir():
            raise DataError(f"The FID reference {reference!r} is neither a dataset under "
                            f"{dataset_dir(config.data.root, '')} nor a folder; set evaluate.fid.reference to the "
                            "curated dataset's name (run curation first) or a folder of images.")
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        pick = sorted(rng.choice(len(files), size=min(limit, len(files)), replace=False).tolist()) if files else []
        images = [Image.open(files[i]).convert("RGB") for i in pick]
    for image in images:  # the extractor resizes to its input anyway; this bounds the memory held
        image.thumbnail((MAX_SIDE, MAX_SIDE))
    if len(images) < 2:
        raise DataError(f"The FID reference {reference!r} holds {len(images)} image(s); FID and KID need at least 2.")
    return images
