"""Safe image decoding: the one place that turns stored bytes into RGB pixels.

Ingest runs ``probe`` on every sample to decide whether it is usable; every later stage reads
images through ``decode_rgb``, which applies exactly the same rules, so nothing that passed
ingest can fail to decode later.

The rules, each deliberate:
- the decompression-bomb limit is checked from the header, before any pixel is decoded; it is
  the caller's limit (``ingest.max_pixels``), not Pillow's process-wide one, which is raised to
  it when lower (Pillow would otherwise refuse, as a bomb, images the config allows);
- the whole image is decoded, so a truncated file is caught here and not in a training loop;
- EXIF orientation is applied (width/height are reported after rotation);
- modes are converted to RGB explicitly: transparency (RGBA, LA, PA, P with a transparent
  colour) is composited onto white, as web images with alpha are drawn on light pages;
  16-bit and 32-bit integer greys are scaled linearly from their full range to 8 bits (a plain
  ``convert("L")`` clips everything above 255 to white); CMYK goes through its ICC profile when
  the file carries one; palette and 1-bit images are expanded.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from photogenic.dataset.schema import KNOWN_FORMATS

#: Pillow's own default (about 89.5 Mpx); configs usually set their own.
DEFAULT_MAX_PIXELS = 89_478_485
_ORIENTATION_TAG = 0x0112
_SWAPS_AXES = {5, 6, 7, 8}
_MATTE = (255, 255, 255)


class UnusableImage(Exception):
    """The bytes cannot be used as an image; ``code`` is the quarantine reason code."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ImageInfo:
    format: str
    width: int  # after EXIF orientation
    height: int
    mode: str  # as stored, before conversion to RGB
    orientation: int


def probe(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageInfo:
    """Fully decode ``data`` as ingest must, and describe it; raise UnusableImage if it can't be."""
    try:
        image, info = _decode(data, max_pixels)
        to_rgb(image)  # the conversion every reader will do must succeed too
    except UnusableImage:
        raise
    except Exception as exc:  # noqa: BLE001 - hostile bytes find exceptions no list foresees in a decoder
        raise UnusableImage("decode_error", f"the decoder failed: {type(exc).__name__}: {exc}") from None
    return info


def decode_rgb(data: bytes, max_pixels: int | None = None) -> Image.Image:
    """Decode ``data`` to an RGB image with orientation applied."""
    image, _ = _decode(data, max_pixels or DEFAULT_MAX_PIXELS)
    return to_rgb(image)


def _allow_pixels(max_pixels: int) -> None:
    """Make Pillow's own bomb check (a warning above ``Image.MAX_IMAGE_PIXELS``, an error above
    twice that, also while loading GIF frames) no stricter than ``max_pixels``. It is only ever
    raised: every image the project decodes comes through here and is held to its own limit by
    the header check below."""
    if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < max_pixels:
        Image.MAX_IMAGE_PIXELS = max_pixels


def _decode(data: bytes, max_pixels: int) -> tuple[Image.Image, ImageInfo]:
    if not data:
        raise UnusableImage("empty_file", "the file has zero bytes")
    _allow_pixels(max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise UnusableImage("not_an_image", "the bytes are not an image format Pillow recognises") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UnusableImage("decompression_bomb", f"over the limit of {max_pixels} pixels (ingest.max_pixels): "
                                                  f"{exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise UnusableImage("decode_error", f"cannot open image: {exc}") from None

    fmt = image.format or "unknown"
    if fmt not in KNOWN_FORMATS:
        raise UnusableImage("unsupported_format", f"format {fmt} is not one of {', '.join(KNOWN_FORMATS)}")
    width, height = image.size
    if width < 1 or height < 1:
        raise UnusableImage("empty_image", f"image has size {width}x{height}")
    if width * height > max_pixels:
        raise UnusableImage(
            "decompression_bomb",
            f"{width}x{height} = {width * height} pixels exceeds the limit of {max_pixels} (ingest.max_pixels)",
        )
    try:
        image.load()
        orientation = _orientation(image)
        mode = image.mode
        image = ImageOps.exif_transpose(image) if orientation != 1 else image
    except OSError as exc:
        code = "truncated" if "truncated" in str(exc).lower() else "decode_error"
        raise UnusableImage(code, f"cannot decode image data: {exc}") from None
    except (SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        raise UnusableImage("decode_error", f"cannot decode image data: {exc}") from None
    return image, ImageInfo(fmt, image.width, image.height, mode, orientation)


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:  # malformed EXIF must not make an otherwise good image unusable
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB by the rules in the module docstring."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        return _scale_integer_grey(image)
    if mode == "F":
        grey = np.clip(np.asarray(image, dtype=np.float32), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if mode == "CMYK":
        return _cmyk_to_rgb(image)
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode in ("LA", "PA", "La", "RGBa"):
        image = image.convert("RGBA")
    elif mode == "L" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        matte = Image.new("RGB", image.size, _MATTE)
        matte.paste(image, mask=image.getchannel("A"))
        return matte
    return image.convert("RGB")


def _scale_integer_grey(image: Image.Image) -> Image.Image:
    values = np.asarray(image)
    if values.dtype.kind == "u" and values.dtype.itemsize == 2 or image.mode.startswith("I;16"):
        full_scale = 65535.0
    else:  # mode "I": 32-bit ints, which Pillow also uses for 16-bit PNGs
        full_scale = 65535.0 if values.max(initial=0) <= 65535 else float(values.max())
    grey = np.clip(values.astype(np.float64) * (255.0 / full_scale), 0, 255).round().astype(np.uint8)
    return Image.fromarray(grey, "L").convert("RGB")


def _cmyk_to_rgb(image: Image.Image) -> Image.Image:
    icc = image.info.get("icc_profile")
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            return ImageCms.profileToProfile(image, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
        except (ImageCms.PyCMSError, OSError):
            pass  # a broken profile: fall back to Pillow's naive conversion
    return image.convert("RGB")
