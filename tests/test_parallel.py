"""A worker process killed under an item (the out-of-memory killer, a crash in a decoder) never
leaves a run waiting forever, and loses nothing: the culprit is named, every other item's result
comes back in order. (Ingest's decode workers are Ray's: tests/dataplane/test_ingest_on_ray.py.)"""

from __future__ import annotations

import pytest

from photogenic.errors import WorkerDied
from photogenic.parallel import ordered_map
from tests.support.deadline import within_deadline
from tests.support.dying_workers import square_or_die, square_or_die_once


def test_the_item_that_kills_its_worker_gets_the_fallback_and_the_rest_come_back_in_order():
    items = [1, 2, -3, 4, 5, 6, -7, 8, 9]
    results = within_deadline(lambda: list(ordered_map(
        square_or_die, items, lambda i: i, workers=2, batch_size=3,
        on_worker_death=lambda item, message: ("died", item, "died" in message))))
    assert [item for item, _ in results] == items
    assert [r for _, r in results] == [1, 4, ("died", -3, True), 16, 25, 36, ("died", -7, True), 64, 81]


def test_without_a_fallback_the_culprit_is_named():
    with pytest.raises(WorkerDied, match="-3"):
        within_deadline(lambda: list(ordered_map(square_or_die, [1, 2, -3, 4], lambda i: i, workers=2, batch_size=2)))


def test_a_worker_killed_by_something_else_costs_nothing(tmp_path):
    marker = str(tmp_path / "killed-once")
    items = list(range(10))
    results = within_deadline(lambda: list(ordered_map(
        square_or_die_once, items, lambda i: (i, marker if i == 4 else ""), workers=2, batch_size=4)))
    assert results == [(i, i * i) for i in items]  # the retried item succeeded: its result is the real one
