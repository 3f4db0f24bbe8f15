"""Every stage's card counts its input rows per input shard (kept, rejected, quarantined, and
for ingest duplicates), by the shard names the manifest or the source records; the counts add
up to the card's totals and to the input rows."""

import json

from photogenic.dataset.accounting import CARD_KEY, totals
from photogenic.dataset.store import Dataset
from photogenic.stages.auto_filter import auto_filter
from photogenic.stages.ingest import ingest
from photogenic.stages.package import package
from photogenic.stages.upsample import upsample
from tests.conftest import config_for, image_bytes, make_captioned, wds_members, write_tar


def _tar(root, name, samples):
    members = []
    for key, image in samples:
        members += wds_members(f"{key:09d}", image, f"photo number {key}")
    write_tar(root / "raw" / name, members)


def _card(root, name):
    return json.loads((root / "datasets" / name / "dataset.json").read_text())


def test_ingest_and_the_filter_count_every_row_by_input_shard(tmp_path):
    root = tmp_path / "data"
    big = lambda seed: image_bytes(size=(160, 140), seed=seed)  # noqa: E731
    _tar(root, "a.tar", [(0, big(0)), (1, image_bytes(seed=1)), (2, b"not an image"), (3, big(3))])
    _tar(root, "b.tar", [(4, big(4)), (5, big(0)), (6, big(6))])  # 5 is 0 again
    config = config_for(root, "ingest.sources.0.uri=raw/*.tar", "ingest.shard_max_images=2", "filter.workers=0",
                        "filter.technical.enabled=false", "filter.ocr.enabled=false", "filter.nsfw.enabled=false")
    ingest(config, progress=False)
    card = _card(root, "ingested")
    assert card[CARD_KEY] == {
        "raw/a.tar": {"kept": 3, "quarantined": 1, "rejected": 0},
        "raw/b.tar": {"duplicate": 1, "kept": 2, "quarantined": 0, "rejected": 0}}

    _tar(root, "c.tar", [(7, big(7)), (8, b"\x00")])  # a shard added later: the counts add up
    ingest(config, progress=False)
    card = _card(root, "ingested")
    assert card[CARD_KEY]["raw/c.tar"] == {"kept": 1, "quarantined": 1, "rejected": 0}
    assert card[CARD_KEY]["raw/a.tar"] == {"kept": 3, "quarantined": 1, "rejected": 0}
    assert totals(card[CARD_KEY]) == {"duplicate": card["duplicates_collapsed"], "kept": card["rows"],
                                      "quarantined": card["quarantined"], "rejected": 0}
    assert sum(totals(card[CARD_KEY]).values()) == 9  # every sample of the three shards

    auto_filter(config, progress=False)
    ingested = Dataset(str(root / "datasets" / "ingested")).read_manifest()
    card = _card(root, "candidates")
    # the input's shards, as its manifest names them
    assert set(card[CARD_KEY]) == set(ingested["shard"].to_pylist()) and len(card[CARD_KEY]) == 4
    assert totals(card[CARD_KEY]) == {"kept": card["rows"], "quarantined": 0, "rejected": card["rejected"]}
    assert card["rejected"] == 1 and card["rows"] + card["rejected"] == ingested.num_rows  # the small one


def test_upsample_and_package_count_every_row_by_input_shard(tmp_path):
    config = make_captioned(tmp_path / "data")
    captioned = Dataset(str(tmp_path / "data" / "datasets" / "captioned")).read_manifest()
    upsample(config, progress=False)
    card = _card(tmp_path / "data", "upsampled")
    assert set(card[CARD_KEY]) == set(captioned["shard"].to_pylist())
    assert totals(card[CARD_KEY]) == {"kept": captioned.num_rows, "quarantined": 0, "rejected": 0}
    result = package(config, progress=False)
    card = _card(tmp_path / "data", "training_set")
    assert totals(card[CARD_KEY]) == {"kept": result.ref.rows, "quarantined": card["quarantined"], "rejected": 0}
    assert card["quarantined"] == 1 and result.ref.rows + card["quarantined"] == captioned.num_rows
