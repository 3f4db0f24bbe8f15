"""MLflow tracking for training runs: params, metrics, sample grids, the model and its registry entry.

Under ZenML, the step's MLflow experiment tracker has already started a run; training logs into
that one. In a plain run (``photogenic step pretrain``) a run is started here, against
``training.tracking.tracking_uri``, else ``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``
in the working directory (the project folder, where it is git-ignored), on a thread of its own
while training starts (``BackgroundTracker``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

from photogenic.safety.secrets import mlflow_credentials_to_environment, redact_tree
from photogenic.tracking_server import require_reachable

log = logging.getLogger(__name__)

DEFAULT_URI = "sqlite:///mlflow.db"


def configured_uri(tracking_cfg) -> str | None:
    """``training.tracking.tracking_uri``, else ``$MLFLOW_TRACKING_URI``, without credentials: a
    ``user:password@`` in the environment's URI moves to MLFLOW_TRACKING_USERNAME/PASSWORD, so
    that the URI can be logged and stored (the config's own URI cannot hold one)."""
    uri = tracking_cfg.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    return mlflow_credentials_to_environment(uri) if uri else None


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = str(value)[:6000]  # MLflow's limit on a param value
    return flat


class Tracker:
    """What the trainer reports to. This one logs to the active MLflow run; params and tags are
    stored on the tracking server for good, so a URI's credentials are redacted from them."""

    def __init__(self, mlflow_module, run_id: str):
        self.mlflow = mlflow_module
        self.run_id = run_id

    def log_params(self, params: dict[str, Any]) -> None:
        self.mlflow.log_params(redact_tree(_flatten(params)))

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self.mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)

    def log_image(self, path: str, folder: str) -> None:
        self.mlflow.log_artifact(path, artifact_path=folder)

    def set_tags(self, tags: dict[str, str]) -> None:
        self.mlflow.set_tags(redact_tree({k: v for k, v in tags.items() if v is not None}))

    def log_model(self, folder: str, registered_model: str | None, tags: dict[str, str]) -> str | None:
        """Upload the pipeline folder as the run's ``model`` artifact and, if asked, register it
        as a new version of ``registered_model`` carrying ``tags``; returns the version."""
        self.mlflow.log_artifacts(folder, artifact_path="model")
        if not registered_model:
            return None
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        client = MlflowClient()
        with contextlib.suppress(MlflowException):  # already registered
            client.create_registered_model(registered_model, description="photogenic text-to-image models "
                                           "(diffusers pipeline folders)")
        source = f"{self.mlflow.get_artifact_uri('model')}"
        version = client.create_model_version(registered_model, source=source, run_id=self.run_id,
                                              tags={k: v for k, v in tags.items() if v is not None})
        return str(version.version)


class NullTracker:
    """For code paths that train without tracking (the benchmark)."""

    run_id = None

    def log_params(self, params): ...
    def log_metrics(self, metrics, step): ...
    def log_image(self, path, folder): ...
    def set_tags(self, tags): ...
    def log_model(self, folder, registered_model, tags): return None


class BackgroundTracker:
    """A ``Tracker`` whose MLflow run is opened, and every call made, on a thread of its own,
    started by the first call that is more than params and tags: the trainer's first metric,
    logged when its first step is done.

    Importing MLflow and opening its SQLite store (tables checked, experiment and run created,
    the git commit looked up) take about 2 s of CPU, which the first training step need not
    wait for; and every call is queued, in order, so a slow tracking server never holds a
    training step up. ``log_model`` and ``run_id`` wait for the calls before them. Everything
    runs on the one thread because MLflow keeps the active run per thread. An error in the
    thread is raised by the next call, and by ``close``.
    """

    def __init__(self, open_run: Callable[[], contextlib.AbstractContextManager[Tracker]]):
        self._calls: queue.Queue = queue.Queue()
        self._error: BaseException | None = None
        self._failed = False
        self._stopped = False
        self._opened = Future()
        self._thread = threading.Thread(target=self._work, args=(open_run,), name="mlflow-tracking", daemon=True)

    def _start(self) -> None:
        if self._thread.ident is None:
            self._thread.start()

    def _work(self, open_run) -> None:
        try:
            with open_run() as tracker:
                self._opened.set_result(tracker)
                self._serve(tracker)
                if self._failed:
                    tracker.mlflow.end_run(status="FAILED")
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            self._error = self._error or exc
            if not self._opened.done():
                self._opened.set_exception(exc)
            if not self._stopped:
                self._serve(None)  # every call still queued, or still to come, fails with the error

    def _serve(self, tracker: Tracker | None) -> None:
        while (item := self._calls.get()) is not None:
            call, done = item
            if tracker is None:
                done.set_exception(self._error)
                continue
            try:
                done.set_result(call(tracker))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                self._error = self._error or exc
                done.set_exception(exc)
        self._stopped = True

    def _submit(self, call: Callable[[Tracker], Any], start: bool = True) -> Future:
        if self._error is not None:
            raise self._error
        done: Future = Future()
        self._calls.put((call, done))
        if start:
            self._start()
        return done

    @property
    def run_id(self) -> str:
        self._start()
        return self._opened.result().run_id

    def log_params(self, params: dict[str, Any]) -> None:
        self._submit(lambda t: t.log_params(params), start=False)

    def set_tags(self, tags: dict[str, str]) -> None:
        self._submit(lambda t: t.set_tags(dict(tags)), start=False)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self._submit(lambda t: t.log_metrics(dict(metrics), step))

    def log_image(self, path: str, folder: str) -> None:
        self._submit(lambda t: t.log_image(path, folder))

    def log_model(self, folder: str, registered_model: str | None, tags: dict[str, str]) -> str | None:
        version = self._submit(lambda t: t.log_model(folder, registered_model, tags)).result()
        if self._error is not None:  # a call before it failed
            raise self._error
        return version

    def close(self, failed: bool = False) -> None:
        """Make the queued calls, end the run (FAILED when ``failed``) and stop the thread."""
        self._failed = failed
        self._calls.put(None)
        self._start()
        self._thread.join()
        if self._error is not None and not failed:
            raise self._error


def tracking_store_uri(tracking_cfg) -> str:
    """The configured tracking store's URI, checked to answer (before training, not after the
    first step)."""
    uri = configured_uri(tracking_cfg) or DEFAULT_URI
    if uri.startswith("file:") or "://" not in uri:
        # MLflow 3 refuses a file store unless asked; the tests' isolated homes use one on purpose
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    require_reachable(uri)
    return uri


def use_tracking_store(tracking_cfg) -> str:
    """Point this process's MLflow at the configured store (checked to answer) and return its URI."""
    import mlflow

    uri = tracking_store_uri(tracking_cfg)
    mlflow.set_tracking_uri(uri)
    return uri


@contextlib.contextmanager
def _new_run(uri: str, experiment: str, run_name: str) -> Iterator[Tracker]:
    import mlflow

    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=run_name) as run:
        log.info("MLflow run %s in %s (experiment %s)", run.info.run_id, uri, experiment)
        yield Tracker(mlflow, run.info.run_id)


@contextlib.contextmanager
def tracking_run(tracking_cfg, run_name: str) -> Iterator[Tracker | BackgroundTracker | NullTracker]:
    """The active MLflow run (ZenML's) if there is one, else a new run in the configured store,
    opened in the background (``BackgroundTracker``)."""
    from photogenic.training.distributed import is_main_process

    if not is_main_process():  # under DDP one process tracks and registers
        yield NullTracker()
        return
    # a run is active only where MLflow is loaded already (ZenML's tracker started it in this thread)
    mlflow = sys.modules.get("mlflow")
    active = mlflow.active_run() if mlflow is not None else None
    if active is not None:
        yield Tracker(mlflow, active.info.run_id)
        return
    uri = tracking_store_uri(tracking_cfg)  # here: the background thread would only find out after the first step
    tracker = BackgroundTracker(lambda: _new_run(uri, tracking_cfg.experiment, run_name))
    try:
        yield tracker
    except BaseException:
        tracker.close(failed=True)
        raise
    tracker.close()
