"""Upsample: give every row whose short side is below the training resolution new pixels.

Reads the captioned dataset, upsamples the small rows with the configured backend (Lanczos by
default; a diffusers upscaler conditioned on ``training_caption`` when a checkpoint is
configured) on the data plane (photogenic.dataplane: Lanczos as Ray tasks, the upscaler in
model actors; ``upsample.workers`` 0 runs either here), and writes the ``upsampled`` dataset:
every input row, its original pointers intact, plus the new image's pointer, size, backend,
scale and seed (``photogenic.upsampling.columns``). New images go to the dataset's own shards,
keyed by the sha256 of their PNG bytes.

A run starts over: the previous manifest goes first, then its shards, then the new shards and
the new manifest last, so an interrupted run leaves no manifest pointing at missing shards and
the next run makes the same bytes as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from PIL import Image

from photogenic.config import DiffusionUpsampleConfig, RunConfig
from photogenic.dataplane.pipeline import Step, map_rows
from photogenic.dataset.accounting import CARD_KEY, KEPT, count_by_shard
from photogenic.dataset.ref import DatasetRef
from photogenic.dataset.schema import QUARANTINE_SCHEMA
from photogenic.dataset.store import SHARDS, Dataset, rebuild_writer, repoint_shards
from photogenic.dataset.upstream import upstream_entries
from photogenic.errors import DataError, WorkerDied
from photogenic.paths import dataset_dir
from photogenic.stages.inputs import open_input
from photogenic.stages.spec import Resources, StageOutput, StageSpec
from photogenic.upsampling.columns import UPSAMPLE_COLUMNS
from photogenic.upsampling.lanczos import png_bytes, upscale_encoded
from photogenic.upsampling.plan import needs_upsampling, passes_needed, resampled_size, sample_seed

log = logging.getLogger(__name__)

CAPTION = "training_caption"


@dataclass
class UpsampleResult:
    ref: DatasetRef
    stats: dict[str, Any]


def upsample(config: RunConfig, progress: bool = True, input_ref: DatasetRef | None = None) -> UpsampleResult:
    """``input_ref``: the captioned set as a runner hands it (else the one upsample.input names)."""
    settings = config.upsample
    source = open_input(config.data.root, "upsample", settings.input, settings.output,
                        "the stage that makes it (caption)", ref=input_ref)
    table = source.read_manifest()
    if settings.backend == "diffusion" and CAPTION not in table.column_names:
        raise DataError(f"The dataset {settings.input!r} (upsample.input) has no {CAPTION!r} column, which the "
                        "diffusion upscaler is conditioned on; upsample the caption stage's output.")
    already = [name for name in UPSAMPLE_COLUMNS if name in table.column_names]
    if already:
        raise DataError(f"The dataset {settings.input!r} (upsample.input) already has the columns {already}: it "
                        "was upsampled before; upsample the caption stage's output instead.")
    rows = table.select([c for c in ("sample_id", "shard", "offset", "length", "width", "height", CAPTION)
                         if c in table.column_names]).to_pylist()
    todo = [i for i, r in enumerate(rows) if needs_upsampling(r["width"], r["height"], settings.min_short_side)]
    log.info("upsample %s: %d rows, %d with short side < %d px (%s)", settings.input, len(rows), len(todo),
             settings.min_short_side, settings.backend)

    # read the upscaler's configs first: a bad checkpoint fails the stage before any image is made
    upscaler = _describe_upscaler(config) if settings.backend == "diffusion" and todo else None
    target = Dataset(dataset_dir(config.data.root, settings.output), name=settings.output)
    writer = rebuild_writer(target, max_images=settings.shard_max_images, max_bytes=settings.shard_max_bytes)
    columns: dict[str, list] = {name: [None] * len(rows) for name in UPSAMPLE_COLUMNS}
    stored: dict[str, Any] = {}  # sha256 -> StoredImage: identical new images are stored once
    try:
        # closed whatever ends the loop, so the stage's Ray session ends here, not when the
        # traceback holding this frame is dropped
        with contextlib.closing(_diffusion(config, upscaler, source, rows, todo, progress) if upscaler is not None
                                else _lanczos(config, source, rows, todo, progress)) as made:
            for index, data, backend, scale, seed in made:
                digest = hashlib.sha256(data).hexdigest()
                if digest not in stored:
                    stored[digest] = writer.add(digest, "png", data)
                width, height = Image.open(io.BytesIO(data)).size  # the PNG header: no decode
                put = stored[digest]
                for name, value in (("upsampled_sha256", digest), ("upsampled_shard", f"{SHARDS}/{put.shard}"),
                                    ("upsampled_offset", put.offset), ("upsampled_length", put.length),
                                    ("upsampled_width", width), ("upsampled_height", height),
                                    ("upsample_backend", backend), ("upsample_scale", scale), ("upsample_seed", seed)):
                    columns[name][index] = value
        writer.close_shard()
    except BaseException:
        writer.abort()
        raise
    for i, row in enumerate(rows):
        w, h = columns["upsampled_width"][i] or row["width"], columns["upsampled_height"][i] or row["height"]
        columns["training_short_side"][i] = min(w, h)

    manifest = repoint_shards(table, source, target)
    for name, dtype in UPSAMPLE_COLUMNS.items():
        manifest = manifest.append_column(pa.field(name, dtype), pa.array(columns[name], dtype))
    stats = {"input": len(rows), "upsampled": len(todo), "kept_as_is": len(rows) - len(todo),
             "new_images": len(stored), "backend": settings.backend, "min_short_side": settings.min_short_side}
    card = {"name": target.name, "stage": "upsample", "input": source.name, "rows": len(rows), "counts": stats,
            CARD_KEY: count_by_shard((row["shard"], KEPT) for row in rows),  # upsampling drops no row
            "upstream": upstream_entries(source, input_ref),
            "params": settings.model_dump(mode="json")}
    ref = target.write(manifest, QUARANTINE_SCHEMA.empty_table(), card, shards=writer.staged)
    log.info("upsample %s → %s: %d rows, %d upsampled", settings.input, settings.output, len(rows), len(todo))
    return UpsampleResult(ref=ref, stats=stats)



def _lanczos(config: RunConfig, source: Dataset, rows: list[dict], todo: list[int], progress: bool):
    settings = config.upsample
    step = Step(name="lanczos", make=functools.partial(
        LanczosStep, source.path, settings.min_short_side, settings.sharpen_percent, settings.sharpen_radius,
        settings.sharpen_threshold), workers=min(settings.workers, len(todo)))
    for index, data in map_rows(todo, lambda i: rows[i], step, key=lambda i: rows[i]["shard"],
                                batch_size=settings.batch_size, desc="upsample (lanczos)", progress=progress,
                                total=len(todo), on_death=functools.partial(_died, rows)):
        row = rows[index]
        scale = settings.min_short_side / min(row["width"], row["height"])
        yield index, data, "lanczos", scale, sample_seed(settings.seed, row["sample_id"])


@dataclass(frozen=True)
class LanczosStep:
    """The data plane's step: each row's image read from ``dataset`` (one ranged read),
    resampled up to ``min_short_side`` and sharpened, as PNG bytes."""

    dataset: str
    min_short_side: int
    percent: int
    radius: float
    threshold: int

    def __call__(self, rows: list[dict[str, Any]]) -> list[bytes]:
        source = Dataset(self.dataset)
        return [upscale_encoded((source.image_bytes(row),
                                 resampled_size(row["width"], row["height"], self.min_short_side),
                                 self.percent, self.radius, self.threshold)) for row in rows]


def _died(rows: list[dict], index: int, message: str):
    raise WorkerDied(f"{message}: upsampling the sample {rows[index]['sample_id']} (from "
                     f"{rows[index]['shard']!r:.200}). Give the workers more memory, or leave the sample out of "
                     "upsample.input.")


def _describe_upscaler(config: RunConfig):
    from photogenic.upsampling.diffusion import describe

    return describe(config.upsample.diffusion, config.data.root)


def _diffusion(config: RunConfig, upscaler, source: Dataset, rows: list[dict], todo: list[int], progress: bool):
    """Batches of same-size, same-pass-count images through the upscaler, in manifest order
    within each group; the groups themselves go in order of their first row. The model runs in
    actors (``upsample.workers`` of them, sharing the GPUs the stage declares), or here."""
    settings = config.upsample
    groups: dict[tuple[int, int, int], list[int]] = defaultdict(list)
    for index in todo:
        row = rows[index]
        passes = passes_needed(min(row["width"], row["height"]), settings.min_short_side, upscaler.native_scale)
        groups[(row["width"], row["height"], passes)].append(index)
    # a chunk never spans two groups, and cuts each into batches of batch_size, in order
    items = [(f"{w}x{h}, {passes} passes", passes, index, sample_seed(settings.seed, rows[index]["sample_id"]))
             for (w, h, passes), members in groups.items() for index in members]
    workers = settings.workers
    step = Step(name=upscaler.name, make=functools.partial(DiffusionStep, settings.diffusion, config.data.root,
                                                           source.path),
                holds_model=True, workers=workers, num_gpus=settings.diffusion.gpus / workers if workers else 0.0,
                caller_threads=True)

    def job(item: tuple[str, int, int, int]) -> tuple[int, dict, str, int]:
        _, passes, index, seed = item
        return passes, rows[index], rows[index].get(CAPTION) or "", seed

    for (_, passes, index, seed), data in map_rows(items, job, step, key=lambda item: item[0],
                                                   batch_size=settings.diffusion.batch_size,
                                                   desc=f"upsample ({upscaler.name})", progress=progress,
                                                   total=len(items)):
        yield index, data, upscaler.name, float(upscaler.native_scale ** passes), seed


class DiffusionStep:
    """The data plane's model step: the diffusion upscaler, loaded once per actor, on a batch of
    same-size images (their rows, prompts and seeds), as PNG bytes."""

    def __init__(self, settings: DiffusionUpsampleConfig, data_root: str, dataset: str):
        from photogenic.upsampling.diffusion import DiffusionUpscaler

        self.upscaler = DiffusionUpscaler(settings, data_root)
        self.dataset = Dataset(dataset)

    def __call__(self, jobs: list[tuple[int, dict, str, int]]) -> list[bytes]:
        from photogenic.upsampling.diffusion import Job

        [passes] = {passes for passes, _, _, _ in jobs}
        batch = [Job(image=self.dataset.load_image(row), prompt=prompt, seed=seed) for _, row, prompt, seed in jobs]
        return [png_bytes(image) for image in self.upscaler.upscale(batch, passes)]


def _run(config: RunConfig, progress: bool, inputs: dict[str, DatasetRef] | None = None) -> StageOutput:
    result = upsample(config, progress=progress, input_ref=(inputs or {}).get("upsample.input"))
    return StageOutput(ref=result.ref, stats=result.stats)


def _gate_params(config: RunConfig) -> dict[str, Any]:
    return {"min_short_side": config.upsample.min_short_side}


def resources(config: RunConfig) -> Resources:
    """A GPU when a diffusion checkpoint is configured; Lanczos runs on CPUs."""
    settings = config.upsample
    if settings.backend == "diffusion":
        return Resources(cpus=4, memory_gb=16, gpus=settings.diffusion.gpus)
    return Resources(cpus=2, memory_gb=4)


SPEC = StageSpec(
    name="upsample",
    description="Upsample every row whose short side is below the training resolution (Lanczos, or a "
    "diffusers upscaler conditioned on the training caption); new images in new shards, originals kept.",
    run=_run,
    params=("data", "upsample"),
    gate="upsample",
    gate_params=_gate_params,
    # the embedded default (Lanczos); with upsample.backend=diffusion it asks for a GPU
    resources=Resources(cpus=2, memory_gb=4),
    config_resources=resources,
    inputs=("upsample.input",),
    outputs=("upsample.output",),
)
