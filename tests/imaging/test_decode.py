"""Every decoding corner ingest must handle, each with a real file."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from photogenic.imaging.decode import UnusableImage, decode_rgb, probe
from tests.conftest import image_bytes


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge size: a decompression bomb as attackers make them."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _png_chunk(b"IEND", b"")


def test_plain_jpeg():
    info = probe(image_bytes((40, 30)))
    assert (info.format, info.width, info.height, info.mode, info.orientation) == ("JPEG", 40, 30, "RGB", 1)


def test_zero_bytes():
    with pytest.raises(UnusableImage) as err:
        probe(b"")
    assert err.value.code == "empty_file"


def test_not_an_image():
    with pytest.raises(UnusableImage) as err:
        probe(b"<html>404 not found</html>")
    assert err.value.code == "not_an_image"


def test_truncated_jpeg_is_detected():
    data = image_bytes((256, 256), seed=3)
    with pytest.raises(UnusableImage) as err:
        probe(data[: len(data) // 2])
    assert err.value.code == "truncated"


def test_png_bomb_beyond_the_configured_limit():
    # a real 4000x4000 PNG that compresses to a few kB: 16 Mpx against a 1 Mpx limit
    buffer = io.BytesIO()
    Image.new("1", (4000, 4000)).save(buffer, "PNG")
    assert len(buffer.getvalue()) < 100_000
    with pytest.raises(UnusableImage) as err:
        probe(buffer.getvalue(), max_pixels=1_000_000)
    assert err.value.code == "decompression_bomb" and "ingest.max_pixels" in str(err.value)


def test_png_header_claiming_gigapixels_is_refused_before_decoding():
    with pytest.raises(UnusableImage) as err:
        probe(_png_claiming(200_000, 200_000))
    assert err.value.code == "decompression_bomb"


def test_cmyk_jpeg_converts_to_rgb():
    data = image_bytes((32, 32), mode="CMYK")
    assert probe(data).mode == "CMYK"
    assert decode_rgb(data).mode == "RGB"


def test_16_bit_grey_png_is_scaled_not_clipped():
    values = np.full((8, 8), 32768, dtype=np.uint16)  # mid-grey in 16 bits
    buffer = io.BytesIO()
    Image.fromarray(values).save(buffer, "PNG")
    info = probe(buffer.getvalue())
    assert info.mode.startswith("I")
    rgb = np.asarray(decode_rgb(buffer.getvalue()))
    assert rgb.shape == (8, 8, 3) and abs(int(rgb[0, 0, 0]) - 128) <= 1  # clipping would give 255


def test_palette_with_alpha_is_composited_on_white():
    image = Image.new("P", (4, 4))
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)  # index 0 red, index 1 blue
    image.putpixel((0, 0), 1)
    buffer = io.BytesIO()
    image.save(buffer, "PNG", transparency=0)  # red is transparent
    rgb = decode_rgb(buffer.getvalue())
    assert rgb.getpixel((1, 1)) == (255, 255, 255)  # transparent red → white matte
    assert rgb.getpixel((0, 0)) == (0, 0, 255)


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_modes_are_composited_on_white(mode):
    image = Image.new(mode, (4, 4), (0, 0, 0, 0) if mode == "RGBA" else (0, 0))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    assert decode_rgb(buffer.getvalue()).getpixel((0, 0)) == (255, 255, 255)


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (40, 20), (10, 200, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif.tobytes())
    info = probe(buffer.getvalue())
    assert (info.width, info.height, info.orientation) == (20, 40, 6)
    assert decode_rgb(buffer.getvalue()).size == (20, 40)


def test_grey_and_one_bit_and_webp():
    assert decode_rgb(image_bytes((8, 8), mode="L", fmt="PNG")).mode == "RGB"
    buffer = io.BytesIO()
    Image.new("1", (8, 8), 1).save(buffer, "PNG")
    assert decode_rgb(buffer.getvalue()).getpixel((0, 0)) == (255, 255, 255)
    assert probe(image_bytes((8, 8), fmt="WEBP")).format == "WEBP"


def test_unsupported_format_is_refused():
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, "PPM")
    with pytest.raises(UnusableImage) as err:
        probe(buffer.getvalue())
    assert err.value.code == "unsupported_format"
