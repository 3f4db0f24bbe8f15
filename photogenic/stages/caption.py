"""Caption stage: the caption each curated image is trained with (``curated`` -> ``captioned``).

Per row, the first usable of: the human caption from stage-2 curation; a captioning model's
caption (``caption.model.checkpoint``, when set); the source alt-text (ingest's ``caption``).
Every candidate is cleaned the way ingest cleans captions (UTF-8, whitespace collapsed, control
characters removed, cut at ``caption.max_chars`` on a word boundary) and must keep at least
``caption.min_chars`` characters. Columns added:

    training_caption           the cleaned caption the model trains on
    training_caption_source    human | model | alt_text
    training_caption_original  the chosen text before cleaning
    model_caption              the captioning model's output, where it ran (null elsewhere)

A row with no usable caption at all goes to the quarantine with the reason, not to training.
Ingest's ``caption`` (the source alt-text) stays as it was. The captioning model runs on the
data plane, in Ray actors (``caption.model.workers``, ``caption.model.gpus`` each), in the same
batches whatever the number of actors; with 0 workers, here.
"""

from __future__ import annotations

import functools
import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from photogenic.config import CaptionModelConfig, RunConfig
from photogenic.dataplane.pipeline import Step, map_rows
from photogenic.dataset.accounting import CARD_KEY, KEPT, QUARANTINED, count_by_shard
from photogenic.dataset.ref import DatasetRef
from photogenic.dataset.schema import QUARANTINE_SCHEMA
from photogenic.dataset.store import Dataset, repoint_shards
from photogenic.dataset.upstream import upstream_entries
from photogenic.paths import dataset_dir
from photogenic.stages import curation
from photogenic.stages.inputs import open_input
from photogenic.stages.spec import Resources, StageOutput, StageSpec
from photogenic.text import clean_caption

log = logging.getLogger(__name__)

HUMAN, MODEL, ALT_TEXT = "human", "model", "alt_text"
CAPTION_SOURCES = (HUMAN, MODEL, ALT_TEXT)
NO_CAPTION = "no_caption"


@dataclass
class CaptionResult:
    ref: DatasetRef
    sources: dict[str, int] = field(default_factory=dict)
    quarantined: int = 0


def caption(config: RunConfig, progress: bool = True, input_ref: DatasetRef | None = None) -> CaptionResult:
    """``input_ref``: the curated set as a runner hands it (else the one caption.input names)."""
    settings = config.caption
    source = open_input(config.data.root, "caption", settings.input, settings.output, made_by="curation",
                        ref=input_ref)
    manifest = source.read_manifest()
    rows = manifest.to_pylist()
    human = [_clean(row.get("human_caption"), config) for row in rows]
    model: list[str | None] = [None] * len(rows)
    if settings.model.checkpoint:
        model = _model_captions(source, rows, [h is None for h in human], config, progress)
    chosen, reasons = [], []
    for row, human_text, model_text in zip(rows, human, model):
        options = [(HUMAN, row.get("human_caption"), human_text),
                   (MODEL, model_text, _clean(model_text, config)),
                   (ALT_TEXT, row.get("caption"), _clean(row.get("caption"), config))]
        pick = next(((kind, original, text) for kind, original, text in options if text is not None), None)
        chosen.append(pick)
        if pick is None:
            reasons.append(_why_none(row, model_text, config))
    keep = [i for i, pick in enumerate(chosen) if pick is not None]
    table = manifest.take(pa.array(keep, pa.int64()))
    added = {
        "training_caption": pa.array([chosen[i][2] for i in keep], pa.string()),
        "training_caption_source": pa.array([chosen[i][0] for i in keep], pa.string()),
        "training_caption_original": pa.array([chosen[i][1] for i in keep], pa.string()),
        "model_caption": pa.array([model[i] for i in keep], pa.string()),
    }
    for name, column in added.items():
        table = table.append_column(name, column)
    target = Dataset(dataset_dir(config.data.root, settings.output), name=settings.output)
    table = repoint_shards(table, source, target)
    dropped = [i for i, pick in enumerate(chosen) if pick is None]
    quarantine = pa.Table.from_pylist([
        {"source_kind": rows[i].get("source_kind"), "source": rows[i].get("source"), "sample_id": rows[i]["sample_id"],
         "length": rows[i].get("length"), "stage": "caption", "reason_code": NO_CAPTION, "reason": reason}
        for i, reason in zip(dropped, reasons)], schema=QUARANTINE_SCHEMA)
    sources = Counter(pick[0] for pick in chosen if pick is not None)
    card = {"name": target.name, "stage": "caption", "input": source.name, "rows": table.num_rows,
            "upstream": upstream_entries(source, input_ref),
            "quarantined": quarantine.num_rows, "caption_sources": dict(sorted(sources.items())),
            CARD_KEY: count_by_shard((row["shard"], KEPT if pick is not None else QUARANTINED)
                                     for row, pick in zip(rows, chosen)),
            # what decided, not where it ran
            "params": settings.model_dump(mode="json", exclude={"model": {"workers", "gpus"}})}
    ref = target.write(table, quarantine, card)
    log.info("caption %s → %s: %d rows in, %d captioned (%s), %d quarantined without a usable caption",
             settings.input, settings.output, len(rows), table.num_rows,
             ", ".join(f"{k} {v}" for k, v in sorted(sources.items())), quarantine.num_rows)
    return CaptionResult(ref, dict(sources), quarantine.num_rows)


def _clean(text: str | None, config: RunConfig) -> str | None:
    """The caption cleaned and bounded, or None when nothing usable is left."""
    if text is None:
        return None
    cleaned = clean_caption(text.encode("utf-8"), config.caption.max_chars).text
    return cleaned if cleaned is not None and len(cleaned) >= config.caption.min_chars else None


def _model_captions(source: Dataset, rows: list[dict[str, Any]], wanted: list[bool], config: RunConfig,
                    progress: bool) -> list[str | None]:
    settings = config.caption.model
    out: list[str | None] = [None] * len(rows)
    todo = [i for i, w in enumerate(wanted) if w]
    step = Step(name="caption model", make=functools.partial(CaptionStep, settings, source.path), holds_model=True,
                workers=min(settings.workers, len(todo)), num_gpus=settings.gpus, caller_threads=True)
    # the batches of the rows in manifest order, whatever their shards: a model's output may
    # depend on its batch, and the captions must not depend on where the images are stored
    for index, text in map_rows(todo, lambda i: {k: rows[i][k] for k in ("shard", "offset", "length")}, step,
                                key=lambda i: source.name, batch_size=settings.batch_size, desc="model captions",
                                progress=progress, total=len(todo)):
        out[index] = text
    log.info("captioning model wrote %d captions", len(todo))
    return out


class CaptionStep:
    """The data plane's model step: the captioning model, loaded once per actor, on a batch of
    images read from ``dataset``."""

    def __init__(self, settings: CaptionModelConfig, dataset: str):
        from photogenic.captioning.model import ImageCaptioner

        self.captioner = ImageCaptioner(settings)
        self.dataset = Dataset(dataset)

    def __call__(self, pointers: list[dict[str, Any]]) -> list[str]:
        return self.captioner.caption([self.dataset.load_image(pointer) for pointer in pointers])


def _why_none(row: dict[str, Any], model_text: str | None, config: RunConfig) -> str:
    human = "no human caption" if not row.get("human_caption") else "the human caption is unusable after cleaning"
    if not config.caption.model.checkpoint:
        model = "no captioning model configured (caption.model.checkpoint)"
    else:
        model = f"the model's caption {model_text!r} is unusable"
    alt = (f"no alt-text (caption_status {row.get('caption_status')})" if not row.get("caption")
           else f"the alt-text is shorter than caption.min_chars={config.caption.min_chars}")
    return f"No usable caption: {human}; {model}; {alt}."


def _run(config: RunConfig, progress: bool, inputs: dict[str, DatasetRef] | None = None) -> StageOutput:
    result = caption(config, progress=progress, input_ref=(inputs or {}).get("caption.input"))
    return StageOutput(ref=result.ref, stats={"caption_sources": result.sources, "quarantined": result.quarantined})


def _gate_params(config: RunConfig) -> dict[str, Any]:
    return {
        **curation.gate_params(config),
        "min_chars": config.caption.min_chars,
        "max_chars": config.caption.max_chars,
        "max_alt_text_share": config.caption.gate.max_alt_text_share,
    }


def _resources(config: RunConfig) -> Resources:
    """GPUs for the captioning actors when a model is configured with some (caption.model.gpus each)."""
    model = config.caption.model
    gpus = math.ceil(model.gpus * max(model.workers, 1)) if model.checkpoint else 0
    return Resources(cpus=2, memory_gb=4, gpus=gpus)


SPEC = StageSpec(
    name="caption",
    description="Choose each curated image's training caption: human, else a captioning model, else "
    "the alt-text; cleaned and bounded, its source recorded.",
    run=_run,
    # curation: the caption gate re-checks the curation quotas (_gate_params)
    params=("data", "caption", "curation"),
    gate="caption",
    gate_params=_gate_params,
    resources=Resources(cpus=2, memory_gb=4),
    config_resources=_resources,
    inputs=("caption.input",),
    outputs=("caption.output",),
)
