"""The caption stage: human first, then a captioning model (a tiny random one here), then the
alt-text; cleaned and bounded; a row with nothing usable is quarantined with the reason."""

import pyarrow as pa
import pytest

from photogenic.dataset.accounting import CARD_KEY, totals
from photogenic.dataset.schema import QUARANTINE_SCHEMA
from photogenic.dataset.store import Dataset
from photogenic.errors import ConfigError
from photogenic.stages.caption import caption
from photogenic.stages.curation import curate
from photogenic.stages.runner import check_output
from tests.support.curation_world import make_world
from tests.support.tiny_captioner import WORDS, build_tiny_captioner


def _curated(tmp_path, *overrides):
    """A curated set whose rows are edited by hand to cover each caption case."""
    world = make_world(tmp_path / "data", 12, *overrides)
    ref = curate(world, progress=False).ref
    dataset = Dataset(ref.path)
    table = dataset.read_manifest()
    rows = table.to_pylist()
    assert len(rows) >= 3
    cases = [
        ("  A red\tcar\x07 on a   beach.\n", "alt text"),  # human, needs cleaning
        (None, "  the alt  text "),  # no human caption: alt-text
        ("\x00\x01", None),  # human caption unusable, no alt-text: nothing
    ]
    for row, (human, alt) in zip(rows, cases):
        row["human_caption"], row["caption"] = human, alt
    dataset.write(pa.Table.from_pylist(rows, schema=table.schema), QUARANTINE_SCHEMA.empty_table(), dataset.read_card())
    return world, rows


def test_human_then_alt_text_cleaned_and_unusable_rows_quarantined(tmp_path):
    world, rows = _curated(tmp_path)
    result = caption(world, progress=False)
    out = {r["sample_id"]: r for r in Dataset(result.ref.path).read_manifest().to_pylist()}
    first, second, third = (r["sample_id"] for r in rows[:3])
    assert out[first]["training_caption"] == "A red car on a beach."
    assert out[first]["training_caption_source"] == "human"
    assert out[first]["training_caption_original"] == "  A red\tcar\x07 on a   beach.\n"
    assert out[second]["training_caption"] == "the alt text" and out[second]["training_caption_source"] == "alt_text"
    assert out[second]["caption"] == "  the alt  text "  # ingest's column is left as it was
    assert third not in out
    quarantine = Dataset(result.ref.path).read_quarantine().to_pylist()
    assert [q["sample_id"] for q in quarantine] == [third]
    assert quarantine[0]["reason_code"] == "no_caption" and "no captioning model configured" in quarantine[0]["reason"]
    counts = totals(Dataset(result.ref.path).read_card()[CARD_KEY])  # per input shard, summed
    assert counts == {"kept": len(out), "quarantined": 1, "rejected": 0} and len(out) + 1 == len(rows)
    assert check_output("caption", result.ref, world).success


def test_long_captions_are_cut_within_the_bound(tmp_path):
    world, rows = _curated(tmp_path, "caption.max_chars=12")
    result = caption(world, progress=False)
    out = {r["sample_id"]: r for r in Dataset(result.ref.path).read_manifest().to_pylist()}
    assert out[rows[0]["sample_id"]]["training_caption"] == "A red car"  # cut at a word boundary
    assert all(len(r["training_caption"]) <= 12 for r in out.values())
    assert check_output("caption", result.ref, world).success


def test_model_captions_rows_without_a_human_caption(tmp_path):
    model = build_tiny_captioner(tmp_path / "tiny-captioner")
    world, rows = _curated(tmp_path, f"caption.model.checkpoint={model}", "caption.model.max_new_tokens=4")
    result = caption(world, progress=False)
    out = {r["sample_id"]: r for r in Dataset(result.ref.path).read_manifest().to_pylist()}
    assert out[rows[0]["sample_id"]]["training_caption_source"] == "human"
    assert out[rows[0]["sample_id"]]["model_caption"] is None  # the model only runs where it is needed
    for sample in (rows[1]["sample_id"], rows[2]["sample_id"]):
        assert out[sample]["training_caption_source"] == "model"
        words = out[sample]["training_caption"].split()
        assert 1 <= len(words) <= 4 and set(words) <= set(WORDS)
    assert result.sources.get("model") == 2 and result.quarantined == 0
    # the model in this process instead of a Ray actor: the same batches, the same captions
    assert world.caption.model.workers == 1
    world.caption.model.workers = 0
    assert caption(world, progress=False).ref.content_hash == result.ref.content_hash


def test_missing_checkpoint_names_the_key(tmp_path):
    world, _ = _curated(tmp_path, f"caption.model.checkpoint={tmp_path / 'no-such-model'}")
    with pytest.raises(ConfigError, match=r"caption\.model\.checkpoint is '.*no-such-model'.*Set caption\.model\.checkpoint"):
        caption(world, progress=False)
