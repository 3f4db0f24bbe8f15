"""The bad-input corpus, built by code: every kind of hostile or broken input the pipeline must
survive, each with the outcome it must get.

An input is one sample of a source (a tar key, a folder file, a table row), one annotation row,
or one configuration. ``build(root)`` writes the sources under ``root/raw`` and returns the
``Input``s with their expected ingest outcome; annotation files are written by
``annotation_cases(...)`` once the candidates exist (they name candidate sample ids); config
cases are plain override lists.

Outcomes: ``KEPT`` (a manifest row), ``DUPLICATE`` (collapsed into another row's sources), or the
set of reason codes one of which quarantines it; ``ANY_INGEST`` where either a row or a quarantine
record is right (an image Pillow may or may not decode fully). Whatever it is, it is exactly one.
"""

from __future__ import annotations

import gzip
import io
import json
import struct
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from tests.conftest import smooth_image_bytes

KEPT = "kept"
DUPLICATE = "duplicate"
ANY_INGEST = "kept or quarantined"
#: the corpus's ingest.max_image_bytes: small, so that a byte bomb stays cheap to build
MAX_IMAGE_BYTES = 2 * 2**20
DECODE_FAILURES = {"truncated", "decode_error", "not_an_image"}


@dataclass
class Input:
    kind: str
    source: str
    ingest: str | set[str]
    #: for a kept row: whether the auto-filter must reject it ("size" = the size scorer), or None (either)
    filtered: str | None = None
    #: what the kept row must look like (column -> value)
    row: dict[str, Any] = field(default_factory=dict)


# -- images ---------------------------------------------------------------------------------------


def picture(seed: int, size=(200, 160), fmt="JPEG", mode="RGB", **save) -> bytes:
    """A smooth picture (gradients and a disc, what the technical scorer can judge) in any
    format and mode."""
    image = Image.open(io.BytesIO(smooth_image_bytes(size, seed=seed, fmt="PNG")))
    return _encode(image if mode == "RGB" else image.convert(mode), fmt, **save)


def _encode(image: Image.Image, fmt: str, **save) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save)
    return buffer.getvalue()


def palette_with_transparency(seed: int) -> bytes:
    image = Image.open(io.BytesIO(picture(seed, fmt="PNG"))).convert("P", palette=Image.Palette.ADAPTIVE)
    return _encode(image, "PNG", transparency=0)


def grey16(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    ramp = (np.linspace(0, 65535, 200)[None, :] * np.ones((160, 1))).astype(np.uint16)
    return _encode(Image.fromarray(ramp + rng.integers(0, 50, ramp.shape, dtype=np.uint16)), "PNG")


def float_tiff(seed: int) -> bytes:
    ramp = (np.linspace(0, 255, 200)[None, :] * np.ones((160, 1)) + seed).astype(np.float32)
    return _encode(Image.fromarray(ramp, "F"), "TIFF")


def animated_gif(seed: int) -> bytes:
    frames = [Image.open(io.BytesIO(picture(seed + i, fmt="PNG"))).convert("P") for i in range(3)]
    return _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)


def rotated_jpeg(seed: int) -> bytes:
    image = Image.open(io.BytesIO(picture(seed, size=(200, 140), fmt="PNG")))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise when shown
    return _encode(image, "JPEG", exif=exif.tobytes())


def one_bit(seed: int) -> bytes:
    return _encode(Image.open(io.BytesIO(picture(seed, fmt="PNG"))).convert("1"), "PNG")


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_pixel_bomb() -> bytes:
    """A 300-byte PNG whose header declares 100,000 x 100,000 pixels."""
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\0" * 1000))
            + png_chunk(b"IEND", b""))


def gif_pixel_bomb() -> bytes:
    """A GIF whose logical screen is 65,535 x 65,535."""
    return b"GIF89a" + struct.pack("<HHBBB", 65535, 65535, 0, 0, 0) + b",\0\0\0\0\1\0\1\0\0\2\2D\1\0;"


# -- tar members ----------------------------------------------------------------------------------


def regular(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def special(name: str, kind: bytes, link: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.devmajor, info.devminor = kind, link, 1, 3
    return info, None


def tar_bytes(members, fmt=tarfile.GNU_FORMAT) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def sample(key: str, image: bytes | None, caption: bytes | None = b"a photo", meta: dict | None = None,
           ext: str = "jpg") -> list:
    members = []
    if image is not None:
        members.append(regular(f"{key}.{ext}", image))
    if caption is not None:
        members.append(regular(f"{key}.txt", caption))
    if meta is not None:
        members.append(regular(f"{key}.json", json.dumps(meta).encode()))
    return members


# -- the corpus ---------------------------------------------------------------------------------


def build(root: Path) -> list[Input]:
    """Write every source of the corpus under ``root/raw``; the inputs and what each must get."""
    inputs: list[Input] = []
    wds = root / "raw" / "wds"
    wds.mkdir(parents=True)
    seeds = iter(range(1000, 2000))

    def shard(kind: str, data: bytes, expected: dict[str, Any], name: str | None = None) -> None:
        """One tar per kind; ``expected``: key -> outcome (or (outcome, filtered, row))."""
        (wds / f"{name or kind}.tar").write_bytes(data)
        for key, outcome in expected.items():
            outcome, filtered, row = outcome if isinstance(outcome, tuple) else (outcome, None, {})
            inputs.append(Input(kind, f"raw/wds/{name or kind}.tar#{key}", outcome, filtered, row))

    def one(kind: str, image: bytes | None, outcome, ext="jpg", caption: bytes | None = b"a photo", meta=None,
            filtered=None, row=None) -> None:
        shard(kind, tar_bytes(sample("k", image, caption, meta, ext)), {"k": (outcome, filtered, row or {})})

    # image formats and modes: each decodes to RGB the same way later stages will
    one("jpeg", picture(next(seeds)), KEPT, row={"format": "JPEG"})
    one("png_rgba", picture(next(seeds), fmt="PNG", mode="RGBA"), KEPT, ext="png", row={"mode": "RGBA"})
    one("png_la", picture(next(seeds), fmt="PNG", mode="LA"), KEPT, ext="png", row={"mode": "LA"})
    one("png_palette_transparency", palette_with_transparency(next(seeds)), KEPT, ext="png", row={"mode": "P"})
    one("png_grey_16bit", grey16(next(seeds)), KEPT, ext="png")
    one("png_1bit", one_bit(next(seeds)), KEPT, ext="png", row={"mode": "1"})
    one("tiff_float", float_tiff(next(seeds)), KEPT, ext="tif", row={"mode": "F"})
    one("tiff_cmyk", picture(next(seeds), fmt="TIFF", mode="CMYK"), KEPT, ext="tif", row={"mode": "CMYK"})
    one("jpeg_cmyk", picture(next(seeds), mode="CMYK"), KEPT, row={"mode": "CMYK"})
    one("gif_animated", animated_gif(next(seeds)), KEPT, ext="gif", row={"format": "GIF"})
    one("webp", picture(next(seeds), fmt="WEBP"), KEPT, ext="webp", row={"format": "WEBP"})
    one("bmp", picture(next(seeds), fmt="BMP"), KEPT, ext="bmp", row={"format": "BMP"})
    one("jpeg_exif_rotated", rotated_jpeg(next(seeds)), KEPT, row={"orientation": 6, "width": 140, "height": 200})
    one("ico_unsupported", picture(next(seeds), size=(64, 64), fmt="ICO"), {"unsupported_format"}, ext="png")
    one("text_named_jpg", b"<html><body>not an image</body></html>", {"not_an_image"})
    one("zero_length_image", b"", {"empty_file"})
    one("tiny_image", picture(next(seeds), size=(12, 9)), KEPT, filtered="size")
    one("extreme_aspect", picture(next(seeds), size=(1600, 100)), KEPT, filtered="size")
    one("reupload_of_jpeg", picture(1000), DUPLICATE)  # the bytes of "jpeg" (read first): one row, two sources

    # truncation at every structural boundary: inside the image, and inside the tar itself
    jpeg = picture(next(seeds), size=(400, 300), quality=95)
    one("jpeg_cut_mid_scan", jpeg[: len(jpeg) // 2], {"truncated"})
    one("jpeg_header_only", jpeg[:200], DECODE_FAILURES)
    png = picture(next(seeds), fmt="PNG")
    one("png_cut_after_ihdr", png[:33], DECODE_FAILURES, ext="png")
    one("png_cut_mid_idat", png[: len(png) // 2], DECODE_FAILURES, ext="png")
    one("png_without_iend", png[:-12], ANY_INGEST, ext="png")
    gif = animated_gif(next(seeds))
    one("gif_cut", gif[: len(gif) // 2], ANY_INGEST, ext="gif")
    webp = picture(next(seeds), fmt="WEBP")
    one("webp_cut", webp[: len(webp) // 2], DECODE_FAILURES, ext="webp")
    good = sample("a", picture(next(seeds))) + sample("b", picture(next(seeds)))
    whole = tar_bytes(good)
    b_header = whole.index(b"b.jpg")  # the second sample's first header
    # tarfile stops quietly at a cut header; the reader notices the missing end block. Sample "a"
    # was read whole, but nothing says no more of its members followed: quarantined, not guessed at
    shard("tar_cut_in_header", whole[: b_header + 100], {"a": {"unreadable_shard"}, "<rest>": {"unreadable_shard"}})
    good = sample("a", picture(next(seeds))) + sample("b", picture(next(seeds)))
    whole = tar_bytes(good)
    b_data = whole.index(b"b.jpg") + 512
    shard("tar_cut_in_data", whole[: b_data + 300],
          {"a": KEPT, "b": {"unreadable_shard"}, "<rest>": {"unreadable_shard"}})
    members = sample("a", picture(next(seeds)))
    end = sum(512 + -(-info.size // 512) * 512 for info, _ in members)
    shard("tar_without_end_blocks", tar_bytes(members)[:end],
          {"a": {"unreadable_shard"}, "<rest>": {"unreadable_shard"}})
    gz = gzip.compress(tar_bytes(sample("a", picture(next(seeds), size=(400, 300)))))
    shard("tar_gz_cut", gz[: len(gz) // 2], {"a": {"unreadable_shard"}, "<rest>": {"unreadable_shard"}})
    shard("garbage_named_tar", bytes(np.random.default_rng(7).integers(0, 256, 5000, dtype=np.uint8)),
          {"<rest>": {"unreadable_shard"}})

    # bombs: by pixels (a tiny file declaring billions) and by bytes (never read)
    one("png_pixel_bomb", png_pixel_bomb(), {"decompression_bomb"}, ext="png")
    one("gif_pixel_bomb", gif_pixel_bomb(), {"decompression_bomb"}, ext="gif")
    one("image_over_max_bytes", b"\xff\xd8" + b"\0" * (MAX_IMAGE_BYTES + 10), {"file_too_large"})
    shard("gzip_byte_bomb", gzip.compress(tar_bytes(sample("k", b"\0" * (20 * 2**20))), 9),
          {"k": {"file_too_large"}})

    # hostile tar members
    img = picture(next(seeds))
    shard("member_absolute", tar_bytes([regular("/etc/k.jpg", img)]), {"/etc/k": {"unsafe_member"}})
    shard("member_climbing", tar_bytes([regular("../../k.jpg", picture(next(seeds)))]), {"../../k": {"unsafe_member"}})
    shard("member_symlink", tar_bytes([special("k.jpg", tarfile.SYMTYPE, "/etc/passwd")] + sample("k", None)),
          {"k": {"unsafe_member"}})
    shard("member_hardlink",
          tar_bytes(sample("a", picture(next(seeds))) + [special("k.jpg", tarfile.LNKTYPE, "a.jpg")]),
          {"a": KEPT, "k": {"unsafe_member"}})
    shard("member_char_device", tar_bytes([special("k.jpg", tarfile.CHRTYPE)]), {"k": {"unsafe_member"}})
    shard("member_fifo", tar_bytes([special("k.jpg", tarfile.FIFOTYPE)]), {"k": {"unsafe_member"}})
    shard("member_repeated", tar_bytes(sample("k", picture(next(seeds))) + [regular("k.jpg", picture(next(seeds)))]),
          {"k": {"duplicate_member"}})
    shard("key_split_by_another", tar_bytes([regular("a.jpg", picture(next(seeds))), regular("b.jpg", picture(
        next(seeds))), regular("a.txt", b"the caption of a")]),
        {"a": (KEPT, None, {"caption_status": "missing"}), "b": KEPT, "a (part 2)": {"split_key"}})
    shard("two_images_one_key", tar_bytes([regular("k.jpg", picture(next(seeds))),
                                           regular("k.png", picture(next(seeds), fmt="PNG"))]),
          {"k": {"multiple_images"}})
    shard("huge_unknown_member", tar_bytes([regular("k.bin", b"\0" * (5 * 2**20))]), {"k": {"missing_image"}})
    shard("zero_length_caption", tar_bytes(sample("k", picture(next(seeds)), b"")),
          {"k": (KEPT, None, {"caption_status": "empty"})})
    dir_member = tarfile.TarInfo("folder")
    dir_member.type = tarfile.DIRTYPE
    shard("directory_member", tar_bytes([(dir_member, None)] + sample("folder/k", picture(next(seeds)))),
          {"folder/k": KEPT})
    shard("caption_without_image", tar_bytes(sample("k", None, b"a caption alone")), {"k": {"missing_image"}})
    shard("failed_download", tar_bytes(sample("k", None, b"x", {"status": "failed_to_download",
                                                                 "error_message": "HTTP 404"})),
          {"k": {"download_failed"}})
    shard("pax_unicode_name", tar_bytes(sample("ключ-🙂", picture(next(seeds))), tarfile.PAX_FORMAT),
          {"ключ-🙂": KEPT})
    bad_name = tarfile.TarInfo("k\udcff.jpg")  # a name that is not UTF-8 (kept as a surrogate escape)
    data = picture(next(seeds))
    bad_name.size = len(data)
    shard("member_name_not_utf8", tar_bytes([(bad_name, data)]), {"k\\udcff": KEPT})

    # hostile captions: the image is kept; the caption is recorded as what it is
    one("caption_control_bytes", picture(next(seeds)), KEPT, caption=bytes(range(1, 32)) * 8,
        row={"caption_status": "binary", "caption": None})
    one("caption_random_bytes", picture(next(seeds)), KEPT, caption=bytes(range(256)) * 4,
        row={"caption_status": "not_utf8", "caption": None})
    one("caption_with_nul", picture(next(seeds)), KEPT, caption=b"a cat\0on a mat", row={"caption_status": "binary"})
    one("caption_huge", picture(next(seeds)), KEPT, caption=b"word " * 600_000,
        row={"caption_status": "too_large", "caption_raw": None})
    one("caption_bidi_controls", picture(next(seeds)), KEPT, caption="a \u202eevil\u202c cat".encode(),
        row={"caption_status": "ok", "caption": "a evil cat"})
    one("caption_latin1", picture(next(seeds)), KEPT, caption="café crème".encode("latin-1"),
        row={"caption_status": "not_utf8"})
    one("caption_whitespace", picture(next(seeds)), KEPT, caption=b" \t\n ", row={"caption_status": "empty"})
    one("caption_too_long", picture(next(seeds)), KEPT, caption=("long " * 1000).encode(),
        row={"caption_status": "truncated"})

    # hostile metadata sidecars: the sample is kept, the problem noted in source_meta
    def with_json(kind: str, raw: bytes, row=None) -> None:
        shard(kind, tar_bytes(sample("k", picture(next(seeds))) + [regular("k.json", raw)]),
              {"k": (KEPT, None, row or {})})

    with_json("meta_deeply_nested", b"[" * 100_000 + b"]" * 100_000)
    with_json("meta_not_json", b"{'likes': 3,")
    with_json("meta_300_numeric_keys", json.dumps({f"n{i}": i for i in range(300)}).encode())
    with_json("meta_huge_integer", b'{"likes": ' + b"9" * 5000 + b"}")
    with_json("meta_lone_surrogate", b'{"url": "https://example.com/\\ud800.jpg", "likes": 1}',
              row={"url": "https://example.com/\\ud800.jpg"})
    with_json("meta_over_cap", b'{"pad": "' + b"x" * (2**20 + 10) + b'"}')

    # hostile tables: one per kind, each its own source
    tables = root / "raw" / "tables"
    tables.mkdir()
    (tables / "images").mkdir()
    outside = root.parent / "outside-the-data"
    outside.mkdir(exist_ok=True)
    (outside / "secret.jpg").write_bytes(picture(next(seeds)))

    def table(kind: str, columns: dict[str, list], expected: dict[str, Any], key: str | None = "key") -> None:
        pq.write_table(pa.table(columns), tables / f"{kind}.parquet")
        for k, outcome in expected.items():
            outcome, filtered, row = outcome if isinstance(outcome, tuple) else (outcome, None, {})
            inputs.append(Input(kind, f"raw/tables/{kind}.parquet#{k}", outcome, filtered, row))

    (tables / "images" / "ok.jpg").write_bytes(picture(next(seeds)))
    table("cell_absolute_path", {"key": ["a"], "image": [str(outside / "secret.jpg")], "caption": ["c"]},
          {"a": {"unsafe_path"}})
    table("cell_climbing_path", {"key": ["a"], "image": ["../../../outside-the-data/secret.jpg"], "caption": ["c"]},
          {"a": {"unsafe_path"}})
    table("cell_file_url", {"key": ["a"], "image": [(outside / "secret.jpg").as_uri()], "caption": ["c"]},
          {"a": {"unsafe_path"}})
    table("cell_http_url", {"key": ["a"], "image": ["http://169.254.169.254/latest/meta-data"], "caption": ["c"]},
          {"a": {"unsafe_path"}})
    table("cell_relative_ok", {"key": ["a"], "image": ["images/ok.jpg"], "caption": ["c"]}, {"a": KEPT})
    table("cell_huge_bytes", {"key": ["a"], "image": [b"\0" * (MAX_IMAGE_BYTES + 1)], "caption": ["c"]},
          {"a": {"file_too_large"}})
    table("cell_wrong_type", {"key": ["a"], "image": [12345], "caption": ["c"]}, {"a": {"bad_image_cell"}})
    table("cell_missing_file", {"key": ["a"], "image": ["images/nope.jpg"], "caption": ["c"]}, {"a": {"missing_image"}})
    table("key_repeated", {"key": ["a", "a"], "image": [picture(next(seeds)), picture(next(seeds))],
                           "caption": ["c", "d"]}, {"a": KEPT, "a (row 2)": {"duplicate_key"}})
    table("caption_cell_wrong_type", {"key": ["a"], "image": [picture(next(seeds))], "caption": [7]},
          {"a": (KEPT, None, {"caption_status": "missing"})})
    table("caption_cell_huge", {"key": ["a"], "image": [picture(next(seeds))], "caption": ["w " * 200_000]},
          {"a": (KEPT, None, {"caption_status": "too_large"})})
    (tables / "table_not_parquet.parquet").write_bytes(b"PAR1 this is not a parquet file")
    inputs.append(Input("table_not_parquet", "raw/tables/table_not_parquet.parquet#<rest>", {"unreadable_table"}))

    # folders: links never followed out, sizes checked before reading
    folder = root / "raw" / "folder"
    folder.mkdir()
    (folder / "ok.jpg").write_bytes(picture(next(seeds)))
    inputs.append(Input("folder_ok", "raw/folder/ok.jpg", KEPT))
    (folder / "link_out.jpg").symlink_to(outside / "secret.jpg")
    inputs.append(Input("folder_link_out", "raw/folder/link_out.jpg", {"unsafe_path"}))
    (folder / "linked_dir").symlink_to(outside)
    inputs.append(Input("folder_linked_dir", "raw/folder/linked_dir", {"unsafe_path"}))
    (folder / "big.jpg").write_bytes(b"\xff\xd8" + b"\0" * (MAX_IMAGE_BYTES + 10))
    inputs.append(Input("folder_file_over_max_bytes", "raw/folder/big.jpg", {"file_too_large"}))
    return inputs


def sources(root: Path) -> list[dict[str, Any]]:
    """The ingest sources that read the corpus."""
    tables = sorted((root / "raw" / "tables").glob("*.parquet"))
    return ([{"kind": "webdataset", "uri": "raw/wds/*.tar"}, {"kind": "folder", "uri": "raw/folder"}]
            + [{"kind": "table", "uri": f"raw/tables/{t.name}", "key_column": "key"} for t in tables])


# -- annotation exports ---------------------------------------------------------------------------


@dataclass
class AnnotationCase:
    kind: str
    file: str
    #: rows the file holds (annotations, and tasks without one), each ending as one outcome; None:
    #: the whole file is refused with one message
    rows: int | None
    #: the reason codes its bad rows must carry
    bad: set[str] = field(default_factory=set)


def annotation_cases(folder: Path, sample_ids: list[str]) -> list[AnnotationCase]:
    """Hostile Label Studio JSON and CSV exports of stage 1, naming the given candidates."""
    folder.mkdir(parents=True)
    cases: list[AnnotationCase] = []
    s = sample_ids

    def result(verdict="keep", criteria=("composition",)):
        return [{"from_name": "s1_verdict", "to_name": "image", "type": "choices", "value": {"choices": [verdict]}},
                {"from_name": "s1_criteria", "to_name": "image", "type": "choices",
                 "value": {"choices": list(criteria)}}]

    def annotation(user=1, when="2026-01-05T10:00:00Z", **extra):
        return {"completed_by": user, "created_at": when, "result": result(), "was_cancelled": False, **extra}

    def task(i, *annotations, **data):
        return {"id": i + 1, "data": {"sample_id": s[i % len(s)], "stage": 1, **data}, "annotations": list(annotations)}

    def json_case(kind: str, tasks: Any, rows: int | None, bad=(), raw: bytes | None = None) -> None:
        path = folder / f"{kind}.json"
        path.write_bytes(raw if raw is not None else json.dumps(tasks).encode())
        cases.append(AnnotationCase(kind, str(path), rows, set(bad)))

    json_case("ls_good", [task(0, annotation()), task(1, annotation(user=2))], 2)
    json_case("ls_annotations_not_a_list", [task(0, annotation()), {**task(1), "annotations": 1}], 2, {"wrong_type"})
    json_case("ls_task_not_an_object", [task(0, annotation()), "a string", 7], 3, {"wrong_type"})
    json_case("ls_missing_sample_id", [{"id": 1, "data": {"stage": 1}, "annotations": [annotation()]}], 1,
              {"missing_field"})
    json_case("ls_unknown_sample", [{"id": 1, "data": {"sample_id": "f" * 64, "stage": 1},
                                     "annotations": [annotation()]}], 1, {"unknown_sample"})
    json_case("ls_result_not_a_list", [task(0, {**annotation(), "result": {"verdict": "keep"}})], 1, {"wrong_type"})
    json_case("ls_verdict_not_a_choice", [task(0, {**annotation(), "result": [
        {"from_name": "s1_verdict", "to_name": "image", "type": "choices", "value": {"choices": ["maybe"]}}]})], 1,
              {"wrong_type"})
    json_case("ls_no_annotator", [task(0, {**annotation(), "completed_by": None})], 1, {"missing_field"})
    json_case("ls_time_not_iso", [task(0, annotation(when="yesterday"))], 1, {"wrong_type"})
    json_case("ls_other_stage_answer", [task(0, {**annotation(), "result": [
        {"from_name": "s2_verdict", "to_name": "image", "type": "choices", "value": {"choices": ["keep"]}}]})], 1,
              {"wrong_stage"})
    json_case("ls_unknown_control", [task(0, {**annotation(), "result": result() + [
        {"from_name": "s1_mood", "to_name": "image", "type": "choices", "value": {"choices": ["happy"]}}]})], 1,
              {"unknown_field"})
    json_case("ls_conflicting_duplicates", [task(0, annotation(user=5)),
                                            task(0, {**annotation(user=5, when="2026-01-06T10:00:00Z"),
                                                     "result": result("reject", ())})], 2, {"duplicate_submission"})
    json_case("ls_cancelled_and_unanswered", [task(0, {**annotation(), "was_cancelled": True}), task(1)], 2)
    json_case("ls_huge_strings", [task(0, annotation(user="u" * 100_000))], 1)
    json_case("ls_deeply_nested", None, None, raw=b"[" * 100_000 + b"]" * 100_000)
    json_case("ls_not_json", None, None, raw=b"{'tasks': [")
    json_case("ls_object_not_list", {"tasks": []}, None)
    json_case("ls_not_utf8", None, None, raw=b'[{"data": "\xff\xfe"}]')

    header = "sample_id,stage,annotator,submitted_at,verdict,composition,lighting,colour_contrast,subject_background\n"

    def csv_case(kind: str, body: str, rows: int | None, bad=()) -> None:
        path = folder / f"{kind}.csv"
        path.write_text(body, encoding="utf-8")
        cases.append(AnnotationCase(kind, str(path), rows, set(bad)))

    ok = f"{s[0]},1,ann-a,2026-01-05T10:00:00Z,keep,yes,no,no,no\n"
    csv_case("csv_good_with_bom_crlf", "\ufeff" + (header + ok).replace("\n", "\r\n"), 1)
    csv_case("csv_superscript_checkbox", header + f"{s[1]},1,ann-a,2026-01-05T10:00:00Z,keep,²,no,no,no\n", 1,
             {"wrong_type"})
    csv_case("csv_superscript_stage", header + f"{s[2]},²,ann-a,2026-01-05T10:00:00Z,keep,yes,no,no,no\n", 1,
             {"wrong_stage"})
    csv_case("csv_empty_required_cells", header + f"{s[3]},1,,2026-01-05T10:00:00Z,keep,yes,no,no,no\n", 1,
             {"missing_field"})
    csv_case("csv_ragged_rows", header + f"{s[4]},1,ann-b,2026-01-05T10:00:00Z,keep\n"
             + f"{s[5]},1,ann-b,2026-01-05T10:00:00Z,keep,yes,no,no,no,extra,cells\n", 2)
    huge = "x" * 200_000
    csv_case("csv_field_over_128k", header + f"{s[0]},1,ann-a,2026-01-05T10:00:00Z,keep,yes,no,no,\"{huge}\"\n", None)
    csv_case("csv_missing_columns", "sample_id,verdict\n" + f"{s[0]},keep\n", None)
    return cases


# -- configurations -------------------------------------------------------------------------------

#: (kind, overrides, the key the refusal must name)
CONFIG_CASES = [
    ("config_unknown_key", ["ingest.wokers=2"], "ingest.wokers"),
    ("config_negative_workers", ["ingest.workers=-1"], "ingest.workers"),
    ("config_zero_pixel_limit", ["ingest.max_pixels=0"], "ingest.max_pixels"),
    ("config_shell_in_sample_pool_out", ["sample_pool.out=x; touch pwned"], "sample_pool.out"),
    ("config_shell_in_data_root", ["data.root=$(reboot)"], "data.root"),
    ("config_annotator_path", ["curation.stage1.annotators=['../../../escape']"], "curation.stage1.annotators.0"),
    ("config_password_in_uri", ["training.tracking.tracking_uri=https://u:pw@mlflow.example.com"],
     "training.tracking.tracking_uri"),
    ("config_unknown_source_kind", ["ingest.sources.0.kind=ftp"], "ingest.sources.0.kind"),
    ("config_curation_dir_climbs", ["curation.dir=../../x"], "curation.dir"),
    ("config_dataset_name_is_a_path", ["filter.output=../ingested"], "filter.output"),
]
