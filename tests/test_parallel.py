"""A worker process killed under an item (the out-of-memory killer, a crash in a decoder) never
leaves a run waiting forever, and loses nothing: the culprit is named, every other item's result
comes back in order."""

from __future__ import annotations

import threading

import pytest

from photogenic.dataset.store import Dataset
from photogenic.errors import WorkerDied
from photogenic.parallel import ordered_map
from photogenic.stages.ingest import ingest
from tests.conftest import config_for, image_bytes, wds_members, write_tar
from tests.support.dying_workers import KILL_CAPTION, probe_or_die, square_or_die, square_or_die_once

#: what multiprocessing.Pool did here: wait forever. A test that hangs fails by this deadline.
DEADLINE = 120


def _within_deadline(work):
    outcome: dict = {}

    def run():
        try:
            outcome["value"] = work()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(DEADLINE)
    assert not thread.is_alive(), f"still waiting after {DEADLINE} s: a lost task is never returned"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def test_the_item_that_kills_its_worker_gets_the_fallback_and_the_rest_come_back_in_order():
    items = [1, 2, -3, 4, 5, 6, -7, 8, 9]
    results = _within_deadline(lambda: list(ordered_map(
        square_or_die, items, lambda i: i, workers=2, batch_size=3,
        on_worker_death=lambda item, message: ("died", item, "died" in message))))
    assert [item for item, _ in results] == items
    assert [r for _, r in results] == [1, 4, ("died", -3, True), 16, 25, 36, ("died", -7, True), 64, 81]


def test_without_a_fallback_the_culprit_is_named():
    with pytest.raises(WorkerDied, match="-3"):
        _within_deadline(lambda: list(ordered_map(square_or_die, [1, 2, -3, 4], lambda i: i, workers=2, batch_size=2)))


def test_a_worker_killed_by_something_else_costs_nothing(tmp_path):
    marker = str(tmp_path / "killed-once")
    items = list(range(10))
    results = _within_deadline(lambda: list(ordered_map(
        square_or_die_once, items, lambda i: (i, marker if i == 4 else ""), workers=2, batch_size=4)))
    assert results == [(i, i * i) for i in items]  # the retried item succeeded: its result is the real one


def test_ingest_quarantines_the_sample_that_kills_its_decoder_and_keeps_the_others(tmp_path, monkeypatch):
    import photogenic.stages.ingest as ingest_module

    monkeypatch.setattr(ingest_module, "run_probe", probe_or_die)  # spawned workers import it by name
    root = tmp_path / "data"
    members = []
    for i in range(12):
        members += wds_members(f"{i:03d}", image_bytes(seed=i), KILL_CAPTION if i == 5 else f"photo {i}")
    write_tar(root / "raw" / "00000.tar", members)
    config = config_for(root, "ingest.sources.0.uri=raw/*.tar", "ingest.workers=2", "ingest.batch_size=4")
    result = _within_deadline(lambda: ingest(config, progress=False))
    assert result.ref.rows == 11 and result.ref.quarantined == 1
    dataset = Dataset(str(root / "datasets" / "ingested"))
    row = dataset.read_quarantine().to_pylist()[0]
    assert row["source"] == "raw/00000.tar#005" and row["reason_code"] == "worker_died"
    assert row["sample_id"] is not None and row["length"] > 0
    assert dataset.read_card()["quarantine_reasons"] == {"worker_died": 1}
