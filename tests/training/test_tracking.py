"""The background MLflow tracker: the run opened on its own thread once there is a metric to log,
calls made there in order, errors handed back to the training thread, a failed run ended as
FAILED."""

from __future__ import annotations

import contextlib
import threading

import pytest

from photogenic.training.tracking import BackgroundTracker


class _Recorder:
    """A Tracker stand-in that records the calls and the thread they ran on."""

    run_id = "run-1"

    def __init__(self, fail_on: str | None = None):
        self.calls: list[tuple] = []
        self.threads: set[str] = set()
        self.fail_on = fail_on
        self.ended: list[str] = []
        self.mlflow = self  # end_run is the MLflow module's

    def _record(self, *call):
        self.threads.add(threading.current_thread().name)
        if call[0] == self.fail_on:
            raise RuntimeError(f"{call[0]} failed")
        self.calls.append(call)

    def log_params(self, params):
        self._record("params", params)

    def log_metrics(self, metrics, step):
        self._record("metrics", step)

    def log_image(self, path, folder):
        self._record("image", path)

    def set_tags(self, tags):
        self._record("tags", tags)

    def log_model(self, folder, registered_model, tags):
        self._record("model", folder)
        return "7"

    def end_run(self, status):
        self.ended.append(status)


def _opener(recorder: _Recorder, fail: bool = False):
    @contextlib.contextmanager
    def open_run():
        if fail:
            raise ConnectionError("no tracking server at that URI")
        yield recorder
        recorder.ended.append("FINISHED")

    return open_run


def test_calls_run_in_order_on_the_tracking_thread_and_log_model_waits_for_them():
    recorder = _Recorder()
    tracker = BackgroundTracker(_opener(recorder))
    tracker.log_params({"lr": 1})
    assert recorder.calls == [] and recorder.threads == set()  # params wait for the first metric
    for step in range(1, 4):
        tracker.log_metrics({"loss": 1.0 / step}, step)
    tracker.log_image("grid.png", "samples")
    assert tracker.log_model("model", "photogenic-t2i", {}) == "7"
    assert tracker.run_id == "run-1"
    tracker.close()
    assert [c[0] for c in recorder.calls] == ["params", "metrics", "metrics", "metrics", "image", "model"]
    assert [c[1] for c in recorder.calls if c[0] == "metrics"] == [1, 2, 3]
    assert recorder.threads == {"mlflow-tracking"} and recorder.ended == ["FINISHED"]


def test_a_store_that_cannot_be_opened_fails_the_next_call_and_close():
    tracker = BackgroundTracker(_opener(_Recorder(), fail=True))
    with pytest.raises(ConnectionError, match="no tracking server"):
        tracker.log_model("model", None, {})  # waits for the thread: never hangs on a dead one
    with pytest.raises(ConnectionError):
        tracker.log_metrics({"loss": 1.0}, 10)
    with pytest.raises(ConnectionError):
        tracker.close()


def test_a_failing_call_is_raised_by_the_next_one_and_a_failed_run_ends_failed():
    recorder = _Recorder(fail_on="metrics")
    tracker = BackgroundTracker(_opener(recorder))
    tracker.log_metrics({"loss": 1.0}, 10)
    with pytest.raises(RuntimeError, match="metrics failed"):
        tracker.log_model("model", None, {})
    tracker.close(failed=True)  # the training raised: its own error is the one to see
    assert recorder.ended == ["FAILED", "FINISHED"]
