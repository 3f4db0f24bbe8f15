"""Ingest: turn image–text sources into a dataset (manifest + image store + quarantine).

Every image is fully decoded once here, so later stages can trust that every manifest row
decodes. The sources are read here, in order; the per-sample work (decode, probe, hash) runs on
the data plane (Ray tasks, ``ingest.workers`` at once; in this process with 0), and its results
come back in input order. Exact duplicates (same sha256) collapse into one row that keeps all of
their sources. Unusable samples go to the quarantine table with a reason code.

Ingest is incremental and idempotent: sources already in the manifest or the quarantine are
skipped before decoding, so re-ingesting the same shards adds nothing and adding a shard adds
only its samples. New images go into new shards; existing shards are never touched. Each input
shard's outcomes (columns, no pixels) become a Parquet part under ``<output>/parts/`` once
every sample of it is recorded; the manifest is written once, at the end. A run killed at any
point and started again decodes only the input shards without a part (it reads every source
again, and writes the image store anew from the bytes it read), and since the outcomes, their
order and the shard boundaries are the same, it writes the same dataset as an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import pyarrow as pa

from photogenic.config import RunConfig
from photogenic.dataplane.parts import PARTS, ShardParts, discard_parts, fingerprint
from photogenic.dataplane.pipeline import Step, map_rows
from photogenic.dataset.accounting import CARD_KEY, DUPLICATE, KEPT, QUARANTINED, count_by_shard
from photogenic.dataset.ref import DatasetRef
from photogenic.dataset.schema import META_PREFIX, QUARANTINE_SCHEMA, manifest_schema
from photogenic.dataset.shards import ShardWriter, list_shards, next_shard_index
from photogenic.dataset.store import SHARDS, Dataset
from photogenic.imaging.decode import ImageInfo
from photogenic.paths import dataset_dir, join
from photogenic.safety.parsing import storable_text
from photogenic.sources.readers import RawSample, ReadLimits, iter_source
from photogenic.stages.ingest_worker import ProbeChunk, ProbeOutcome, ProbeTask, run_probe
from photogenic.stages.spec import Resources, StageOutput, StageSpec
from photogenic.text import CleanCaption, clean_caption

log = logging.getLogger(__name__)

#: numeric source metadata becomes ``meta_<key>`` columns only for keys of this form, and for at
#: most MAX_META_COLUMNS keys per dataset (the first met): a sidecar with hundreds of keys must not
#: give the manifest hundreds of columns. Every value stays in source_meta either way.
_META_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_META_COLUMNS = 64

_STORED_EXTENSION = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp", "TIFF": "tif"}


@dataclass
class IngestStats:
    """Counts of one ingest run (the dataset's totals are on its DatasetRef)."""

    seen: int = 0
    skipped_known: int = 0
    added: int = 0
    duplicates: int = 0
    quarantined: int = 0
    shards_written: int = 0
    seconds: float = 0.0

    @property
    def images_per_second(self) -> float:
        return (self.seen - self.skipped_known) / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "images_per_second": round(self.images_per_second, 1)}


@dataclass
class IngestResult:
    ref: DatasetRef
    stats: IngestStats


def ingest(config: RunConfig, progress: bool = True) -> IngestResult:
    settings = config.ingest
    dataset = Dataset(dataset_dir(config.data.root, settings.output), name=settings.output)
    state = _ManifestBuilder.load(dataset)
    removed = dataset.discard_unreferenced_shards(state.referenced_shards())
    if removed:
        log.warning("Removed %d files an interrupted run left in %s: %s", len(removed), dataset.path, removed)
    parts_dir = join(dataset.path, PARTS)
    parts = _InputShards(ShardParts(parts_dir, parts_fingerprint(dataset, config)))

    writer = ShardWriter(
        dataset.shards_dir,
        first_index=next_shard_index(list_shards(dataset.shards_dir)),
        max_images=settings.shard_max_images,
        max_bytes=settings.shard_max_bytes,
    )
    stats = IngestStats()
    started = time.perf_counter()
    try:
        with contextlib.closing(_probe_all(_new_samples(config, state, stats), config, parts, progress)) as results:
            for sample, outcome in results:
                parts.record(sample, outcome)
                _record(sample, outcome, state, writer, stats)
        parts.finish()
        writer.close_shard()
    except BaseException:
        writer.abort()
        raise
    stats.shards_written = len(writer.closed_shards)
    stats.seconds = time.perf_counter() - started
    # an unchanged dataset is left byte for byte as it was; a new one is written even if empty
    ref = state.checkpoint(dataset, config) if state.changed or not dataset.exists() else dataset.ref()
    discard_parts(parts_dir)
    if parts.reused:
        log.info("ingest: %d input shards decoded by an interrupted run were not decoded again", parts.reused)
    log.info(
        "ingest %s: %d seen, %d already known, %d added, %d duplicates, %d quarantined (%.0f img/s); dataset has %d rows",
        settings.output, stats.seen, stats.skipped_known, stats.added, stats.duplicates, stats.quarantined,
        stats.images_per_second, ref.rows,
    )
    return IngestResult(ref=ref, stats=stats)


def parts_fingerprint(dataset: Dataset, config: RunConfig) -> str:
    """What the parts depend on: the dataset they add to, the sources and the settings that
    decide an outcome (not the workers or the chunk size, which change how, not what)."""
    base = dataset.ref().content_hash if dataset.exists() else None
    params = config.ingest.model_dump(mode="json", exclude={"workers", "batch_size", "gate"})
    return fingerprint("ingest", base, config.data.root, params)


def _new_samples(config: RunConfig, state: _ManifestBuilder, stats: IngestStats) -> Iterator[RawSample]:
    for index, source in enumerate(config.ingest.sources):
        for sample in iter_source(source, config.data.root, ReadLimits.of(config.ingest)):
            stats.seen += 1
            sample.source = storable_text(sample.source)  # names from a tar or a disk need not be UTF-8
            if sample.source in state.known_sources:
                stats.skipped_known += 1
                continue
            # known from now on, so a source listed twice (overlapping patterns) counts once
            state.known_sources.add(sample.source)
            sample.unit = f"{index}\t{sample.unit}"  # the same shard under two sources: two units
            yield sample


def _probe_all(samples: Iterator[RawSample], config: RunConfig, parts: _InputShards,
               progress: bool) -> Iterator[tuple[RawSample, ProbeOutcome]]:
    """Decode and check samples on the data plane, results in input order. A sample of an input
    shard an interrupted run finished takes its outcome from that shard's part instead."""
    settings = config.ingest

    def task(sample: RawSample) -> ProbeTask | ProbeOutcome:
        image = sample.image if sample.problem is None else None  # the source's own verdict stands
        task = ProbeTask(image, sample.caption, settings.max_pixels, settings.max_image_bytes,
                         settings.max_caption_chars, sample.caption_status)
        return parts.known(sample, task) or task

    def died(sample: RawSample, message: str) -> ProbeOutcome:
        caption = clean_caption(sample.caption, settings.max_caption_chars)
        data = (sample.image if sample.problem is None else None) or b""
        return ProbeOutcome(hashlib.sha256(data).hexdigest() if data else None, len(data), None,
                            ("worker_died", f"decoding it killed the decode worker: {message}"), caption)

    # the probe is looked up here, when the stage runs (tests replace it); workers import it by name
    step = Step(name="probe", make=functools.partial(ProbeChunk, run_probe), workers=settings.workers)
    yield from map_rows(samples, task, step, key=lambda sample: sample.unit, batch_size=settings.batch_size,
                        desc=f"ingest → {settings.output}", progress=progress, on_death=died)


#: an input shard's part: each new sample's outcome, what it was computed from (to tell that the
#: source still holds the same sample), never its pixels
PART_SCHEMA = pa.schema([
    ("source", pa.string()), ("caption_in", pa.binary()), ("caption_status_in", pa.string()),
    ("sample_id", pa.string()), ("length", pa.int64()),
    ("format", pa.string()), ("width", pa.int64()), ("height", pa.int64()), ("mode", pa.string()),
    ("orientation", pa.int64()), ("problem_code", pa.string()), ("problem", pa.string()),
    ("caption", pa.string()), ("caption_status", pa.string()), ("caption_raw", pa.binary()),
])


class _InputShards:
    """Ingest's parts: an input shard's outcomes are written when its last sample is recorded,
    and read back by a run that meets the shard again with the same fingerprint. Reading runs a
    few windows ahead of recording, so each keeps its own place."""

    def __init__(self, parts: ShardParts):
        self.parts = parts
        self.reused = 0
        self._reading: dict[str, _StoredPart] = {}  # input shard -> its part as read, if it has one
        self._unit: str | None = None  # the input shard being recorded, and its rows so far
        self._rows: list[dict[str, Any]] = []

    def known(self, sample: RawSample, task: ProbeTask) -> ProbeOutcome | None:
        """The outcome an interrupted run recorded for this sample, if it finished its shard
        and the shard still holds the same sample there (same source, bytes and caption)."""
        if sample.unit not in self._reading:
            done = self.parts.done(sample.unit)
            self._reading[sample.unit] = _StoredPart(self.parts.read(sample.unit).to_pylist() if done else None)
        return self._reading[sample.unit].next(sample, task)

    def record(self, sample: RawSample, outcome: ProbeOutcome) -> None:
        if sample.unit != self._unit:
            self.finish()
            self._unit = sample.unit
        self._rows.append(_part_row(sample, outcome))

    def finish(self) -> None:
        """The input shard being recorded is complete: its part, unless it came from one whole."""
        if self._unit is None:
            return
        stored = self._reading.pop(self._unit, None)
        if stored is not None and stored.whole():
            self.reused += 1
        else:
            self.parts.write(self._unit, pa.Table.from_pylist(self._rows, schema=PART_SCHEMA))
        self._unit, self._rows = None, []


class _StoredPart:
    def __init__(self, rows: list[dict[str, Any]] | None):
        self.rows, self.position = rows, 0

    def next(self, sample: RawSample, task: ProbeTask) -> ProbeOutcome | None:
        if self.rows is None or self.position >= len(self.rows):
            self.rows = None
            return None
        row = self.rows[self.position]
        self.position += 1
        sample_id = hashlib.sha256(task.image).hexdigest() if task.image is not None else None
        if (row["source"], row["sample_id"], row["caption_in"], row["caption_status_in"]) != \
                (sample.source, sample_id, task.caption, task.caption_status):
            self.rows = None  # the source changed since: decode the rest of the shard
            return None
        return _outcome(row)

    def whole(self) -> bool:
        """Every sample of the shard came from the part, and the part had no other."""
        return self.rows is not None and self.position == len(self.rows)


def _part_row(sample: RawSample, outcome: ProbeOutcome) -> dict[str, Any]:
    info, problem, caption = outcome.info, outcome.problem, outcome.caption
    return {
        "source": sample.source, "caption_in": sample.caption, "caption_status_in": sample.caption_status,
        "sample_id": outcome.sample_id, "length": outcome.length,
        "format": info and info.format, "width": info and info.width, "height": info and info.height,
        "mode": info and info.mode, "orientation": info and info.orientation,
        "problem_code": problem and problem[0], "problem": problem and problem[1],
        "caption": caption.text, "caption_status": caption.status, "caption_raw": caption.raw,
    }


def _outcome(row: dict[str, Any]) -> ProbeOutcome:
    info = ImageInfo(row["format"], row["width"], row["height"], row["mode"], row["orientation"]) \
        if row["format"] is not None else None
    problem = (row["problem_code"], row["problem"]) if row["problem_code"] is not None else None
    return ProbeOutcome(row["sample_id"], row["length"], info, problem,
                        CleanCaption(row["caption"], row["caption_status"], row["caption_raw"]))


def _record(sample: RawSample, outcome: ProbeOutcome, state: _ManifestBuilder, writer: ShardWriter,
            stats: IngestStats) -> None:
    shard = sample.unit.split("\t", 1)[-1]  # the input shard's name, as the source records it
    if sample.image is None or sample.problem is not None or outcome.problem is not None:
        code, message = sample.problem or outcome.problem or ("missing_image", "the source has no image")
        state.quarantine(sample, outcome, code, message)
        state.outcomes.append((shard, QUARANTINED))
        stats.quarantined += 1
        return
    if state.add_duplicate_source(outcome.sample_id, sample.source):
        state.outcomes.append((shard, DUPLICATE))
        stats.duplicates += 1
        return
    stored = writer.add(outcome.sample_id, _STORED_EXTENSION[outcome.info.format], sample.image)
    state.add_row(sample, outcome, shard=f"{SHARDS}/{stored.shard}", offset=stored.offset)
    state.outcomes.append((shard, KEPT))
    stats.added += 1


class _ManifestBuilder:
    """The manifest being built: the existing rows (as Arrow) plus this run's new rows."""

    def __init__(self, existing: pa.Table, quarantine: pa.Table, counted: dict[str, dict[str, int]] | None = None):
        self.existing = existing
        self.existing_quarantine = quarantine
        #: the existing rows' outcomes per input shard (the card's), and this run's, in order
        self.counted = counted or {}
        self.outcomes: list[tuple[str, str]] = []
        self.new_rows: list[dict[str, Any]] = []
        self.new_quarantine: list[dict[str, Any]] = []
        self.extra_sources: dict[int, list[str]] = {}  # row index -> sources added this run
        self.changed = False
        ids = existing.column("sample_id").to_pylist() if existing.num_rows else []
        self.index: dict[str, int] = {sid: i for i, sid in enumerate(ids)}
        sources = existing.column("sources").to_pylist() if existing.num_rows else []
        self.known_sources: set[str] = {s for group in sources for s in group}
        self.known_sources.update(quarantine.column("source").to_pylist())
        self.meta_columns: set[str] = {n for n in existing.schema.names if n.startswith(META_PREFIX)}
        self.capped = False

    @classmethod
    def load(cls, dataset: Dataset) -> _ManifestBuilder:
        if not dataset.exists():
            return cls(manifest_schema().empty_table(), QUARANTINE_SCHEMA.empty_table())
        manifest, quarantine, card = dataset.read_manifest(), dataset.read_quarantine(), dataset.read_card()
        counted = card.get(CARD_KEY)
        if counted is None and manifest.num_rows + quarantine.num_rows:
            # made before ingest counted per input shard: what it held, under a name no shard has
            counted = {"(ingested before the counts per input shard)": {
                KEPT: manifest.num_rows, QUARANTINED: quarantine.num_rows,
                DUPLICATE: sum(len(s) - 1 for s in manifest.column("sources").to_pylist())}}
        return cls(manifest, quarantine, counted)

    def referenced_shards(self) -> set[str]:
        return set(self.existing.column("shard").to_pylist()) if self.existing.num_rows else set()

    def add_duplicate_source(self, sample_id: str, source: str) -> bool:
        row = self.index.get(sample_id)
        if row is None:
            return False
        if row < self.existing.num_rows:
            self.extra_sources.setdefault(row, []).append(source)
        else:
            self.new_rows[row - self.existing.num_rows]["sources"].append(source)
        self.changed = True
        return True

    def add_row(self, sample: RawSample, outcome: ProbeOutcome, shard: str, offset: int) -> None:
        info, caption = outcome.info, outcome.caption
        row = {
            "sample_id": outcome.sample_id,
            "shard": shard,
            "offset": offset,
            "length": outcome.length,
            "format": info.format,
            "width": info.width,
            "height": info.height,
            "mode": info.mode,
            "orientation": info.orientation,
            "source_kind": sample.source_kind,
            "source": sample.source,
            "sources": [sample.source],
            "url": storable_text(sample.meta["url"]) if isinstance(sample.meta.get("url"), str) else None,
            "caption": caption.text,
            "caption_source": "source" if caption.text is not None else None,
            "caption_status": caption.status,
            "caption_raw": caption.raw,
            "source_meta": _meta_json(sample),
        }
        for key, value in sample.meta.items():
            number = _number(value)
            if number is not None and self._meta_column(f"{META_PREFIX}{key}"):
                row[f"{META_PREFIX}{key}"] = number
        self.index[outcome.sample_id] = self.existing.num_rows + len(self.new_rows)
        self.new_rows.append(row)
        self.changed = True

    def _meta_column(self, name: str) -> bool:
        """Whether ``name`` is (or may become) a flattened metadata column."""
        if name in self.meta_columns:
            return True
        if not _META_KEY.match(name[len(META_PREFIX):]):
            return False
        if len(self.meta_columns) >= MAX_META_COLUMNS:
            if not self.capped:  # once a run: a pool with hundreds of keys would say it hundreds of times
                log.warning("numeric source metadata beyond %d keys (%r, and any later new key) stays in source_meta "
                            "only, not as a meta_ column", MAX_META_COLUMNS, name[len(META_PREFIX):])
            self.capped = True
            return False
        self.meta_columns.add(name)
        return True

    def quarantine(self, sample: RawSample, outcome: ProbeOutcome, code: str, message: str) -> None:
        self.new_quarantine.append({
            "source_kind": sample.source_kind,
            "source": sample.source,
            "sample_id": outcome.sample_id,
            "length": outcome.length or sample.size or 0,
            "stage": "ingest",
            "reason_code": code,
            "reason": storable_text(message),
        })
        self.changed = True

    def checkpoint(self, dataset: Dataset, config: RunConfig) -> DatasetRef:
        """Write the manifest (existing + new rows so far) and quarantine atomically."""
        manifest = self._manifest()
        quarantine = pa.concat_tables([
            self.existing_quarantine.cast(QUARANTINE_SCHEMA),
            pa.Table.from_pylist(self.new_quarantine, schema=QUARANTINE_SCHEMA),
        ])
        counts = count_by_shard(self.outcomes, before=self.counted)
        return dataset.write(manifest, quarantine, _card(dataset, manifest, quarantine, counts, config))

    def _manifest(self) -> pa.Table:
        meta_columns = sorted(
            {n for n in self.existing.schema.names if n.startswith(META_PREFIX)}
            | {k for row in self.new_rows for k in row if k.startswith(META_PREFIX)}
        )
        schema = manifest_schema({name: pa.float64() for name in meta_columns})
        existing = self.existing
        if self.extra_sources:
            sources = existing.column("sources").to_pylist()
            for row, extra in self.extra_sources.items():
                sources[row] = sources[row] + extra
            existing = existing.set_column(
                existing.schema.get_field_index("sources"), "sources", pa.array(sources, pa.list_(pa.string()))
            )
        for name in schema.names:
            if name not in existing.schema.names:
                existing = existing.append_column(name, pa.nulls(existing.num_rows, schema.field(name).type))
        new = pa.Table.from_pylist(self.new_rows, schema=schema)
        return pa.concat_tables([existing.select(schema.names).cast(schema), new])


def _number(value: Any) -> float | None:
    """A metadata value as a finite-or-infinite float, when it is a number at all."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return float(value)
    except OverflowError:  # an integer beyond float's range: kept in source_meta only
        return None


def _meta_json(sample: RawSample) -> str | None:
    meta = dict(sample.meta)
    if sample.notes:  # e.g. an unparseable .json sidecar: the image is still fine
        meta["metadata_error"] = "; ".join(sample.notes)
    return storable_text(json.dumps(meta, sort_keys=True, ensure_ascii=False, default=str)) if meta else None


def _card(dataset: Dataset, manifest: pa.Table, quarantine: pa.Table, counts: dict[str, dict[str, int]],
          config: RunConfig) -> dict[str, Any]:
    """dataset.json: what a person needs to know about this version. No timestamps, so that the
    same inputs give byte-identical datasets (and the same DVC md5). ``counts``: every sample
    ingested into this version, by input shard: kept (a row), duplicate (a source of another
    row) or quarantined; they add up to rows, duplicates_collapsed and quarantined."""
    sources = manifest.column("sources").to_pylist()
    return {
        "name": dataset.name,
        "stage": "ingest",
        "rows": manifest.num_rows,
        "quarantined": quarantine.num_rows,
        "duplicates_collapsed": sum(len(s) - 1 for s in sources),
        "shards": len({s for s in manifest.column("shard").to_pylist()}),
        "bytes": int(sum(manifest.column("length").to_pylist())),
        "formats": dict(sorted(Counter(manifest.column("format").to_pylist()).items())),
        "caption_status": dict(sorted(Counter(manifest.column("caption_status").to_pylist()).items())),
        "quarantine_reasons": dict(sorted(Counter(quarantine.column("reason_code").to_pylist()).items())),
        CARD_KEY: counts,
        "sources": [s.model_dump() for s in config.ingest.sources],
        "params": config.ingest.model_dump(mode="json", exclude={"sources", "gate"}),
    }


def _run(config: RunConfig, progress: bool, inputs: dict[str, DatasetRef] | None = None) -> StageOutput:
    result = ingest(config, progress=progress)
    return StageOutput(ref=result.ref, stats=result.stats.as_dict())


def _gate_params(config: RunConfig) -> dict[str, Any]:
    return {
        "max_caption_chars": config.ingest.max_caption_chars,
        "max_quarantine_share": config.ingest.gate.max_quarantine_share,
        "min_rows": config.ingest.gate.min_rows,
    }


def _sources(config: RunConfig) -> dict[str, str]:
    return {f"source{i}": source.uri for i, source in enumerate(config.ingest.sources)}


SPEC = StageSpec(
    name="ingest",
    description="Read the sources, decode and check every image, collapse exact duplicates, "
    "quarantine what cannot be used, and write the ingested dataset.",
    run=_run,
    params=("data", "ingest"),
    gate="ingest",
    gate_params=_gate_params,
    resources=Resources(cpus=2, memory_gb=4),
    outputs=("ingest.output",),
    external_inputs=_sources,
)
