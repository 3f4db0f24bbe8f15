"""A test set of real photographs with defects planted by code, for the auto-filter.

The originals are stock photographs that ship inside two wheels the project installs, so
nothing is downloaded and nothing is stored in the repository: scikit-image (``skimage/data``,
the ``dev`` extra) and scikit-learn (``sklearn/datasets/images``, installed with MLflow).

=============  ==========================  ===============================================  =====
name           file                        what it shows                                    licence
=============  ==========================  ===============================================  =====
astronaut      skimage astronaut.png       NASA portrait: head and shoulders, flag, shuttle  public domain
chelsea        skimage chelsea.png         close-up of a cat's head, filling the frame      CC0
coffee         skimage coffee.png          a cup of coffee on a wooden table, from above    CC0
hubble         skimage hubble_deep_field   deep-field astronomy image, dark by nature       public domain
rocket         skimage rocket.jpg          a rocket on its launch pad at night              public domain
motorcycle     skimage motorcycle_left     a red motorcycle in a garage                     see skimage
china          sklearn china.jpg           a pagoda among trees (foliage texture)           CC BY 2.0
flower         sklearn flower.jpg          a dahlia against a dark green background         CC BY 2.0
=============  ==========================  ===============================================  =====

Each original is kept as it is (the clean set) and gets four of the nine defects, in rotation,
so every defect is planted on three or four different photographs and the whole set is 40
images (8 clean, 32 defective), built at test time in about a second. The capture and overlay
defects are the sample pool's own (``photogenic.samplepool.defects``), at the strengths it
plants them; size defects are a downscale under the size filter's limit and a banner crop.
Every image goes through a JPEG round trip at the pool's quality, as a crawled image would.

``filter_real_photos`` runs ingest and the auto-filter on the set with the default config,
except the two pool-wide scorers: near-duplicate removal would cluster each variant with its
original (they are copies of one picture by construction) and keep one, which measures
nothing about the per-image thresholds; concept quotas have no concepts to balance here.
"""

from __future__ import annotations

import importlib.resources
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

from photogenic.samplepool import defects as planted

#: name -> (package that ships it, file in that package)
ORIGINALS: dict[str, tuple[str, str]] = {
    "astronaut": ("skimage.data", "astronaut.png"),
    "chelsea": ("skimage.data", "chelsea.png"),
    "coffee": ("skimage.data", "coffee.png"),
    "hubble": ("skimage.data", "hubble_deep_field.jpg"),
    "rocket": ("skimage.data", "rocket.jpg"),
    "motorcycle": ("skimage.data", "motorcycle_left.png"),
    "china": ("sklearn.datasets.images", "china.jpg"),
    "flower": ("sklearn.datasets.images", "flower.jpg"),
}
DEFECTS = ("blur", "noise", "underexposed", "overexposed", "washed_out", "text_overlay", "watermark",
           "too_small", "extreme_aspect")
#: defects per original (in rotation through DEFECTS)
PER_ORIGINAL = 4
#: long side the originals are brought down to, which keeps the 40 JPEGs under 3 MB (at full
#: size, 1000 px for the deep-field image, they take 3.4 MB, most of it the noisy copies)
MAX_LONG_SIDE = 640
#: short side of a too_small copy: under the size filter's default 128 px
TINY_SHORT_SIDE = 96
#: long:short ratio of an extreme_aspect crop: over the size filter's default 3
BANNER_RATIO = 4.0


@dataclass(frozen=True)
class RealPhoto:
    #: file stem: ``<original>`` or ``<original>-<defect>``
    name: str
    original: str
    #: None for the clean original
    defect: str | None
    jpeg: bytes

    @property
    def image(self) -> Image.Image:
        return Image.open(io.BytesIO(self.jpeg)).convert("RGB")


def load_original(name: str) -> Image.Image:
    """An original as RGB, read from the installed wheel (``ModuleNotFoundError`` names the
    package to install when the extra is missing), its long side at most MAX_LONG_SIDE."""
    package, resource = ORIGINALS[name]
    with importlib.resources.files(package).joinpath(resource).open("rb") as handle:
        image = Image.open(handle)
        image.load()
    image = image.convert("RGB")
    scale = MAX_LONG_SIDE / max(image.size)
    if scale < 1:
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
    return image


def defects_of(index: int) -> tuple[str, ...]:
    """The defects the ``index``-th original gets: PER_ORIGINAL consecutive ones, in rotation."""
    return tuple(DEFECTS[(PER_ORIGINAL * index + k) % len(DEFECTS)] for k in range(PER_ORIGINAL))


def plant(defect: str, image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """``image`` with ``defect``; the sample pool's functions for what the pool plants."""
    image = image.copy()
    if defect in planted.EXPOSURE:
        return planted.EXPOSURE[defect](image, rng)
    if defect == "blur":
        return planted.blur(image, rng)
    if defect == "noise":
        return planted.sensor_noise(image, rng)
    if defect == "text_overlay":
        return planted.text_overlay(image, rng)[0]
    if defect == "watermark":
        return planted.watermark(image, rng)[0]
    if defect == "too_small":
        scale = TINY_SHORT_SIDE / min(image.size)
        return image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
    if defect == "extreme_aspect":
        # a banner: the full width, a horizontal strip through the middle
        w, h = image.size
        strip = max(1, round(w / BANNER_RATIO))
        top = (h - strip) // 2
        return image.crop((0, top, w, top + strip))
    raise ValueError(f"unknown defect {defect!r}")


def real_photo_set(seed: int = 0) -> list[RealPhoto]:
    """The 40 images: each original clean, then its defective copies."""
    photos = []
    for index, name in enumerate(ORIGINALS):
        original = load_original(name)
        photos.append(RealPhoto(name, name, None, planted.encode_jpeg(original)))
        for defect in defects_of(index):
            rng = np.random.default_rng([seed, index, DEFECTS.index(defect)])
            photos.append(RealPhoto(f"{name}-{defect}", name, defect,
                                    planted.encode_jpeg(plant(defect, original, rng))))
    return photos


def write_folder(photos: list[RealPhoto], folder: Path) -> None:
    """The set as a folder source: ``<name>.jpg`` with a sidecar caption ``<name>.txt``."""
    folder.mkdir(parents=True, exist_ok=True)
    for photo in photos:
        (folder / f"{photo.name}.jpg").write_bytes(photo.jpeg)
        (folder / f"{photo.name}.txt").write_text(f"a photograph: {photo.original}", encoding="utf-8")


@dataclass(frozen=True)
class Verdict:
    photo: RealPhoto
    #: the scorer that rejected it, None when kept
    rejected_by: str | None
    reason: str | None


def filter_real_photos(root: Path, photos: list[RealPhoto], *overrides: str, progress: bool = False
                       ) -> list[Verdict]:
    """Ingest ``photos`` from a folder under ``root`` and run the auto-filter with the default
    config (pool-wide scorers off, see the module docstring); the verdict per photo."""
    from photogenic.config import load_config
    from photogenic.dataset.store import Dataset
    from photogenic.filtering.cascade import REASON, REJECTED_BY
    from photogenic.stages.auto_filter import REJECTED, auto_filter
    from photogenic.stages.ingest import ingest

    write_folder(photos, root / "raw" / "real-photos")
    config = load_config(None, [f"data.root={root}", "ingest.sources.0.kind=folder", "ingest.sources.0.uri=raw/real-photos",
                                "filter.dedup.enabled=false", "filter.concept.enabled=false", *overrides])
    ingest(config, progress=progress)
    filtered = auto_filter(config, progress=progress)
    rows: dict[str, dict[str, Any]] = {}
    kept = Dataset(filtered.ref.path).read_manifest(["source"]).to_pylist()
    rejected = pq.read_table(Path(filtered.ref.path) / REJECTED, columns=["source", REJECTED_BY, REASON]).to_pylist()
    for row in kept:
        rows[_stem(row["source"])] = {REJECTED_BY: None, REASON: None}
    for row in rejected:
        rows[_stem(row["source"])] = row
    return [Verdict(photo, rows[photo.name][REJECTED_BY], rows[photo.name][REASON]) for photo in photos]


def _stem(source: str) -> str:
    return source.rsplit("/", 1)[-1].rsplit(".", 1)[0]


def shares(verdicts: list[Verdict]) -> tuple[float, float]:
    """(share of clean originals kept, share of defective copies rejected)."""
    clean = [v for v in verdicts if v.photo.defect is None]
    defective = [v for v in verdicts if v.photo.defect is not None]
    return (sum(v.rejected_by is None for v in clean) / len(clean),
            sum(v.rejected_by is not None for v in defective) / len(defective))
