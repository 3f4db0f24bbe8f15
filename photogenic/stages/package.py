"""Package: the training set, ready for the trainer to stream.

Reads the upsampled dataset; each row's training image (the upsampled one where there is one)
is resized to just cover its aspect-ratio bucket and cropped to it on the data plane (Ray tasks,
``package.workers`` at once; here with 0), and written with its
caption and metadata as one WebDataset sample (``{sample_id}.png``, ``.txt``, ``.json``) in the
training set's own shards. The manifest follows the training-set contract (sample_id, shard,
offset, length, width, height, caption, split) plus bucket, crop, size and provenance columns
(``TRAINING_SET_COLUMNS``). Rows without a usable training caption are quarantined with the
reason, never packaged captionless, and so is a row whose image kills its worker every time. A
dataset card (README.md) is written into the folder.

Like upsample, a run starts over (manifest removed first, shards next, manifest written last).
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from photogenic.config import RunConfig
from photogenic.dataplane.pipeline import Step, map_rows
from photogenic.dataset.accounting import CARD_KEY, KEPT, QUARANTINED, count_by_shard
from photogenic.dataset.ref import DatasetRef
from photogenic.dataset.schema import QUARANTINE_SCHEMA
from photogenic.dataset.store import SHARDS, Dataset, rebuild_writer
from photogenic.dataset.upstream import upstream_entries
from photogenic.errors import ConfigError, DataError
from photogenic.packaging.buckets import Bucket, make_buckets, nearest_bucket
from photogenic.packaging.card import render_card
from photogenic.packaging.images import EXTENSIONS, Packed, pack_encoded
from photogenic.packaging.split import split_of
from photogenic.paths import dataset_dir, join
from photogenic.stages.inputs import open_input
from photogenic.stages.spec import Resources, StageOutput, StageSpec
from photogenic.upsampling.columns import training_image_pointer

log = logging.getLogger(__name__)

CARD_NAME = "README.md"

TRAINING_SET_COLUMNS: dict[str, pa.DataType] = {
    "sample_id": pa.string(),
    # the packaged image: shard (relative to the folder), byte range, size (= its bucket)
    "shard": pa.string(),
    "offset": pa.int64(),
    "length": pa.int64(),
    "width": pa.int32(),
    "height": pa.int32(),
    "format": pa.string(),
    # the training caption, and where it came from (human | model | alt_text)
    "caption": pa.string(),
    "caption_source": pa.string(),
    "split": pa.string(),
    "bucket": pa.string(),
    # SDXL's conditioning: crop corner in the resized image, and the size before upsampling
    "crop_left": pa.int32(),
    "crop_top": pa.int32(),
    "original_width": pa.int32(),
    "original_height": pa.int32(),
    # the image that was packaged (after upsampling) and the factor it was resized by (<= 1)
    "source_width": pa.int32(),
    "source_height": pa.int32(),
    "source_short_side": pa.int32(),
    "resize_scale": pa.float64(),
    "upsample_backend": pa.string(),
    "source_kind": pa.string(),
    "source": pa.string(),
}

_NEEDED = ("sample_id", "shard", "offset", "length", "width", "height", "training_caption")


@dataclass
class PackageResult:
    ref: DatasetRef
    stats: dict[str, Any]
    card: str


def package(config: RunConfig, progress: bool = True, input_ref: DatasetRef | None = None) -> PackageResult:
    """``input_ref``: the upsampled set as a runner hands it (else the one package.input names)."""
    settings = config.package
    source = open_input(config.data.root, "package", settings.input, settings.output, "the upsample stage",
                        ref=input_ref)
    if settings.input == config.upsample.output and config.upsample.min_short_side < settings.resolution:
        raise ConfigError(
            f"package.resolution is {settings.resolution} px but upsample.min_short_side is "
            f"{config.upsample.min_short_side}: rows between the two would be enlarged while packaging. Set "
            "upsample.min_short_side to the training resolution (package.resolution) and upsample again.")
    names = source.manifest_schema().names
    missing = [c for c in _NEEDED if c not in names]
    if missing:
        raise DataError(f"The dataset {settings.input!r} (package.input) lacks the columns {missing}: package "
                        "the upsample stage's output, which carries the caption stage's training_caption.")
    rows = source.read_manifest().to_pylist()
    buckets = make_buckets(settings.resolution, settings.bucket_step, settings.max_aspect_ratio)
    usable, quarantine = [], []
    for row in rows:
        caption = (row.get("training_caption") or "").strip()
        if caption:
            usable.append(row)
        else:
            quarantine.append(_quarantined(row, "no_training_caption",
                                           "the row has no training caption (training_caption is empty or null)"))

    target = Dataset(dataset_dir(config.data.root, settings.output), name=settings.output)
    writer = rebuild_writer(target, max_images=settings.shard_max_images, max_bytes=settings.shard_max_bytes)
    ext = EXTENSIONS[settings.image_format]
    step = Step(name="pack", make=functools.partial(PackStep, source.path, settings.crop, settings.image_format,
                                                    settings.jpeg_quality), workers=min(settings.workers, len(usable)))

    # each row with the image it trains on and that image's bucket, worked out once
    placed = [(row, pointer, nearest_bucket(pointer["width"], pointer["height"], buckets))
              for row in usable for pointer in [training_image_pointer(row)]]

    def job(item: tuple[dict[str, Any], dict[str, Any], Bucket]) -> tuple[dict[str, Any], Bucket, str]:
        row, pointer, bucket = item
        return pointer, bucket, row["sample_id"]

    out: dict[str, list] = {name: [] for name in TRAINING_SET_COLUMNS}
    try:
        for (row, pointer, bucket), packed in map_rows(placed, job, step, key=lambda item: item[1]["shard"],
                                                       batch_size=settings.batch_size, desc="package",
                                                       progress=progress, total=len(placed), on_death=_killed):
            if isinstance(packed, str):  # its image killed the worker every time
                quarantine.append(_quarantined(row, "worker_died", packed))
                continue
            caption = row["training_caption"].strip()
            split = split_of(row["sample_id"], settings.validation_share, settings.split_salt)
            values = {
                "sample_id": row["sample_id"], "width": bucket.width, "height": bucket.height,
                "format": settings.image_format.upper(), "caption": caption,
                "caption_source": row.get("training_caption_source"), "split": split, "bucket": bucket.name,
                "crop_left": packed.crop_left, "crop_top": packed.crop_top,
                "original_width": row["width"], "original_height": row["height"],
                "source_width": pointer["width"], "source_height": pointer["height"],
                "source_short_side": min(pointer["width"], pointer["height"]), "resize_scale": packed.scale,
                "upsample_backend": row.get("upsample_backend"), "source_kind": row.get("source_kind"),
                "source": row.get("source"),
            }
            meta = {k: values[k] for k in ("sample_id", "split", "bucket", "crop_left", "crop_top", "original_width",
                                           "original_height", "caption_source", "upsample_backend")}
            stored = writer.add_sample(row["sample_id"], [
                (ext, packed.data), ("txt", caption.encode("utf-8")),
                ("json", json.dumps(meta, sort_keys=True).encode("utf-8"))])[0]
            values.update(shard=f"{SHARDS}/{stored.shard}", offset=stored.offset, length=stored.length)
            for name in TRAINING_SET_COLUMNS:
                out[name].append(values[name])
        writer.close_shard()
    except BaseException:
        writer.abort()
        raise

    manifest = pa.table({name: pa.array(out[name], dtype) for name, dtype in TRAINING_SET_COLUMNS.items()})
    quarantine_table = pa.Table.from_pylist(quarantine, schema=QUARANTINE_SCHEMA) if quarantine \
        else QUARANTINE_SCHEMA.empty_table()
    params = settings.model_dump(mode="json")
    dropped = {q["sample_id"] for q in quarantine}
    upstream = upstream_entries(source, input_ref)
    card_text = render_card(name=target.name, input_name=source.name, rows=manifest.to_pylist(),
                            quarantined=len(quarantine), upstream=upstream, params=params)
    splits = {s: out["split"].count(s) for s in ("train", "validation")}
    stats = {"input": len(rows), "packaged": manifest.num_rows, "quarantined": len(quarantine), **splits,
             "upsampled": sum(1 for b in out["upsample_backend"] if b),
             "buckets": {b: out["bucket"].count(b) for b in sorted(set(out["bucket"]))}}
    card = {"name": target.name, "stage": "package", "input": source.name, "rows": manifest.num_rows,
            "quarantined": len(quarantine), "counts": stats, "buckets": [b.name for b in buckets],
            CARD_KEY: count_by_shard((row["shard"], QUARANTINED if row["sample_id"] in dropped else KEPT)
                                     for row in rows),
            "upstream": upstream, "params": params}
    ref = target.write(manifest, quarantine_table, card, files={CARD_NAME: card_text.encode("utf-8")},
                       shards=writer.staged)
    log.info("package %s → %s: %d rows in, %d packaged (%d train, %d validation), %d quarantined",
             settings.input, settings.output, len(rows), manifest.num_rows, splits["train"], splits["validation"],
             len(quarantine))
    return PackageResult(ref=ref, stats=stats, card=join(target.path, CARD_NAME))


@dataclass(frozen=True)
class PackStep:
    """The data plane's step: each row's training image read from ``dataset`` (one ranged read)
    and packed into its bucket."""

    dataset: str
    crop: str
    image_format: str
    jpeg_quality: int

    def __call__(self, jobs: list[tuple[dict[str, Any], Bucket, str]]) -> list[Packed]:
        source = Dataset(self.dataset)
        return [pack_encoded((source.image_bytes(pointer), bucket, self.crop, sample_id, self.image_format,
                              self.jpeg_quality)) for pointer, bucket, sample_id in jobs]


def _killed(item: tuple[dict[str, Any], dict[str, Any], Bucket], message: str) -> str:
    return f"packing its image killed the worker: {message}"


def _quarantined(row: dict[str, Any], code: str, reason: str) -> dict[str, Any]:
    return {"source_kind": row.get("source_kind"), "source": row.get("source"), "sample_id": row["sample_id"],
            "length": row["length"], "stage": "package", "reason_code": code, "reason": reason}


def _run(config: RunConfig, progress: bool, inputs: dict[str, DatasetRef] | None = None) -> StageOutput:
    result = package(config, progress=progress, input_ref=(inputs or {}).get("package.input"))
    return StageOutput(ref=result.ref, stats=result.stats, reports={"dataset_card": result.card})


def _gate_params(config: RunConfig) -> dict[str, Any]:
    settings = config.package
    buckets = make_buckets(settings.resolution, settings.bucket_step, settings.max_aspect_ratio)
    return {"resolution": settings.resolution, "buckets": [b.name for b in buckets], "min_rows": settings.gate.min_rows}


SPEC = StageSpec(
    name="package",
    description="Package the training set: aspect-ratio buckets at the training resolution, crop "
    "coordinates, captions, a stable validation split, WebDataset shards and a dataset card.",
    run=_run,
    # upsample: package refuses a resolution above upsample.min_short_side
    params=("data", "package", "upsample"),
    gate="training_set",
    gate_params=_gate_params,
    resources=Resources(cpus=2, memory_gb=4),
    inputs=("package.input",),
    outputs=("package.output",),
)
