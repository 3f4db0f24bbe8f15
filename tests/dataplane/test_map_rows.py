"""map_rows, the data plane's ordered map over rows (a local Ray): a worker killed under a row
never leaves a run waiting and loses nothing. The row that kills its worker every time is named
(or gets the caller's verdict), every other result comes back in order; a model step's chunks
are retried whole, so its batches never change; a step that cannot even be built fails the
stage with its own error."""

from __future__ import annotations

import functools
import shutil
import tempfile

import pytest

from photogenic.dataplane.pipeline import EachRow, Step, map_rows
from photogenic.dataplane.session import ray_session
from photogenic.errors import ConfigError, WorkerDied
from tests.support.deadline import within_deadline
from tests.support.dying_workers import BatchSizes, UnloadableModel, square_or_die, square_or_die_once


@pytest.fixture(scope="module", autouse=True)
def one_ray():
    """One local Ray for the module, which every map_rows here uses as it is: Ray started and
    stopped again and again in one process, with workers dying under it, has lost track of its
    own objects (an "owner unknown" error from Ray Data). Set up as each test's Ray would be
    (tests/conftest.py): session files in a short temp dir, token auth off."""
    folder = tempfile.mkdtemp(prefix="ray-")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RAY_TMPDIR", folder)
        env.setenv("RAY_AUTH_MODE", "disabled")
        with ray_session(cpus=2):
            yield
    shutil.rmtree(folder, ignore_errors=True)


def _squares(function, items, to_arg=lambda item: item, **kwargs):
    step = Step(name="square", make=functools.partial(EachRow, function), workers=2)
    return within_deadline(lambda: list(map_rows(items, to_arg, step, key=lambda item: "shard", batch_size=3,
                                                 desc="square", progress=False, **kwargs)))


def test_the_row_that_kills_its_worker_gets_the_fallback_and_the_rest_come_back_in_order():
    items = [1, 2, -3, 4, 5, 6, -7, 8, 9]
    results = _squares(square_or_die, items, on_death=lambda item, message: ("died", item, "died" in message))
    assert [item for item, _ in results] == items
    assert [r for _, r in results] == [1, 4, ("died", -3, True), 16, 25, 36, ("died", -7, True), 64, 81]


def test_without_a_fallback_the_culprit_is_named():
    with pytest.raises(WorkerDied, match="-3"):
        _squares(square_or_die, [1, 2, -3, 4])


def test_a_worker_killed_by_something_else_costs_nothing(tmp_path):
    marker = str(tmp_path / "killed-once")
    items = list(range(10))
    results = _squares(square_or_die_once, items, to_arg=lambda i: (i, marker if i == 4 else ""))
    assert results == [(i, i * i) for i in items]  # the retried row succeeded: its result is the real one


def test_a_model_step_keeps_its_batches_when_an_actor_dies(tmp_path):
    marker = tmp_path / "actor-died"
    step = Step(name="sizes", make=functools.partial(BatchSizes, str(marker)), holds_model=True, workers=1)
    items = list(range(7))
    results = within_deadline(lambda: list(map_rows(items, lambda i: i, step, key=lambda i: "a" if i < 5 else "b",
                                                    batch_size=3, desc="sizes", progress=False)))
    assert marker.exists()  # an actor died, and its chunk was tried again whole
    # chunks of at most 3 consecutive rows of one shard: 3 + 2 of "a", 2 of "b"
    assert results == list(zip(items, [3, 3, 3, 2, 2, 2, 2]))


def test_a_model_that_cannot_load_fails_with_its_own_error():
    step = Step(name="unloadable", make=UnloadableModel, holds_model=True, workers=1)
    with pytest.raises(ConfigError, match="could not be loaded"):
        within_deadline(lambda: list(map_rows([1, 2], lambda i: i, step, key=lambda i: "a", batch_size=1,
                                              desc="model", progress=False)))
