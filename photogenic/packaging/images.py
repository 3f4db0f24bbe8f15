"""One image to its bucket: resize so it just covers the bucket (Lanczos, which antialiases when
shrinking), cut the bucket out (centre, or a seeded random offset), encode."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from PIL import Image

from photogenic.imaging.decode import decode_rgb
from photogenic.packaging.buckets import Bucket, cover_scale


@dataclass(frozen=True)
class Packed:
    data: bytes
    #: size after resizing, before the crop
    resized: tuple[int, int]
    #: SDXL's crops_coords_top_left: where the bucket was cut from the resized image
    crop_left: int
    crop_top: int
    scale: float


def pack(image: Image.Image, bucket: Bucket, crop: str, sample_id: str, fmt: str, quality: int) -> Packed:
    scale = cover_scale(image.width, image.height, bucket)
    resized = (max(bucket.width, round(image.width * scale)), max(bucket.height, round(image.height * scale)))
    if resized != image.size:
        image = image.resize(resized, Image.Resampling.LANCZOS)
    spare_x, spare_y = resized[0] - bucket.width, resized[1] - bucket.height
    if crop == "random":
        digest = hashlib.sha256(f"crop:{sample_id}".encode()).digest()
        left = int.from_bytes(digest[:4], "big") % (spare_x + 1)
        top = int.from_bytes(digest[4:8], "big") % (spare_y + 1)
    else:
        left, top = spare_x // 2, spare_y // 2
    out = image.crop((left, top, left + bucket.width, top + bucket.height))
    return Packed(encode(out, fmt, quality), resized, left, top, scale)


def encode(image: Image.Image, fmt: str, quality: int) -> bytes:
    """Fixed encoder settings: the same pixels give the same bytes, which keeps DVC md5s stable."""
    buffer = io.BytesIO()
    if fmt == "png":
        image.save(buffer, "PNG", compress_level=6, optimize=False)
    elif fmt == "jpeg":
        image.save(buffer, "JPEG", quality=quality, optimize=False, progressive=False, subsampling="4:4:4")
    else:
        image.save(buffer, "WEBP", quality=quality, method=4)
    return buffer.getvalue()


EXTENSIONS = {"png": "png", "jpeg": "jpg", "webp": "webp"}


def pack_encoded(args: tuple[bytes, Bucket, str, str, str, int]) -> Packed:
    """Worker entry point: source bytes in, the packed image out."""
    data, bucket, crop, sample_id, fmt, quality = args
    return pack(decode_rgb(data), bucket, crop, sample_id, fmt, quality)
