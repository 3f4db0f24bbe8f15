"""A Ray for one stage: the cluster ``RAY_ADDRESS`` names (a KubeRay cluster, ``ray start``
anywhere), else a local Ray on this machine's CPUs, started here and stopped when the stage
ends. A Ray the caller already started (a test, a notebook) is used as it is and left running.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator

log = logging.getLogger(__name__)

ADDRESS_ENV = "RAY_ADDRESS"


@contextlib.contextmanager
def ray_session(cpus: int | None = None, gpus: int | None = None) -> Iterator[None]:
    """``cpus``/``gpus``: what a local Ray may use (default: all of this machine's; a pod's
    CPU limit is what ``os.sched_getaffinity`` reports inside it)."""
    try:
        import ray
    except ImportError:
        from photogenic.errors import ConfigError

        raise ConfigError("The data plane needs Ray: install photogenic with its `ray` extra "
                          "(pip install 'photogenic[ray]'), or run the stage in one process "
                          "(its `workers` set to 0).") from None
    if ray.is_initialized():
        yield
        return
    address = os.environ.get(ADDRESS_ENV)
    if address:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=True)
        log.info("connected to the Ray cluster at %s", address)
        own = None
    else:
        # local workers import what the driver imports: the driver's import path travels with
        # them (a benchmark's or a test's own modules, beside the installed package)
        before = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in dict.fromkeys(
            [*sys.path, *(before or "").split(os.pathsep)]) if p and os.path.isdir(p))
        temp, own = _temp_dir()
        try:
            ray.init(num_cpus=cpus or len(os.sched_getaffinity(0)), num_gpus=gpus, include_dashboard=False,
                     logging_level=logging.WARNING, log_to_driver=False, configure_logging=False, _temp_dir=temp)
        finally:
            if before is None:
                del os.environ["PYTHONPATH"]
            else:
                os.environ["PYTHONPATH"] = before
    _quiet_data_context()
    try:
        yield
    finally:
        ray.shutdown()
        if own:
            shutil.rmtree(own, ignore_errors=True)


def model_gpus(wanted: float) -> float:
    """GPUs a model actor asks Ray for: ``wanted``, except from a local Ray with fewer GPUs
    than that (a laptop, a CPU-only pod), where such an actor would wait forever: there the
    model runs on the CPU. A cluster's Ray (``RAY_ADDRESS``) is asked as it is: its autoscaler
    adds the GPU nodes the stage declared."""
    if not wanted or os.environ.get(ADDRESS_ENV):
        return wanted
    import ray

    have = ray.cluster_resources().get("GPU", 0.0)
    if have >= wanted:
        return wanted
    log.warning("the stage declares %s GPU(s) per model actor, but this Ray has %s: the models run on the CPU",
                wanted, have)
    return 0.0


def _temp_dir() -> tuple[str, str | None]:
    """Where the local Ray keeps its session (logs, sockets): under RAY_TMPDIR or TMPDIR as Ray
    would, unless that path is too long for the sockets Ray opens about 70 characters below it
    (AF_UNIX allows 107, and a pod's or a test's TMPDIR is often deep): then a folder of its
    own under /tmp, removed when the session ends. Returns (folder, the one to remove)."""
    base = os.environ.get("RAY_TMPDIR") or tempfile.gettempdir()
    if len(os.path.join(base, "ray")) <= 32:
        return os.path.join(base, "ray"), None
    own = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    return os.path.join(own, "ray"), own


def _quiet_data_context() -> None:
    """Ray Data's own progress bars, execution banners and notes off: each stage shows one bar, in rows/s."""
    from ray.data import DataContext

    context = DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    # nor a line per execution (ingest runs one per window of chunks); warnings still show
    logging.getLogger("ray.data").setLevel(logging.WARNING)
