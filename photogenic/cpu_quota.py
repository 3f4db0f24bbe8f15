"""The CPUs this process really has, and how many compute threads torch should run on them.

torch sizes its intra-op thread pool from the cores the node has, not from the share a container
may use. In a pod limited to 2 CPUs on a 64-core node it starts 64 OpenMP threads; every parallel
region then ends in a barrier where the threads that got a core spin, waiting for those that did
not. The same happens beside another busy process on a small machine: on 2 cores a demo
pretraining beside one other torch process fell from about 7 steps/s to one step every 10 s. So
the thread count comes from what the kernel will give the process:

- the CPU bandwidth quota of its cgroup (cgroup v2 ``cpu.max``, v1 ``cpu.cfs_quota_us`` over
  ``cpu.cfs_period_us``; a Kubernetes CPU limit is one), the lowest along its cgroup's ancestors;
- its CPU affinity (``os.sched_getaffinity``: taskset, cpusets, Kubernetes' static CPU manager);

shared by the training processes a launcher started on this machine (``LOCAL_WORLD_SIZE``, set by
torchrun), less one CPU for each DataLoader worker process (a worker runs one torch thread, which
torch sets itself).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

#: where Linux mounts the cgroup file systems (v2 unified at the root; v1 one folder per controller)
CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")
#: the v1 cpu controller's mount folder, by distribution
_V1_CPU_MOUNTS = ("cpu", "cpu,cpuacct", "cpuacct,cpu")


def available_cpus(cgroup_root: Path | str | None = None, proc_cgroup: Path | str | None = None) -> float:
    """CPUs this process may use: the lower of its affinity's CPU count and its cgroup quota
    (which may be fractional: a limit of 1500m is 1.5). ``cgroup_root`` (default CGROUP_ROOT) and
    ``proc_cgroup`` (default PROC_CGROUP) let a test point it at a faked hierarchy."""
    affinity = _affinity_cpus()
    quota = cgroup_cpu_quota(Path(cgroup_root or CGROUP_ROOT), Path(proc_cgroup or PROC_CGROUP))
    return min(affinity, quota) if quota is not None else float(affinity)


def compute_threads(workers: int = 0, *, cpus: float | None = None, local_processes: int | None = None) -> int:
    """torch intra-op threads for one training process: its share of ``cpus`` (default: what
    ``available_cpus`` finds) among the ``local_processes`` training processes on this machine
    (default: ``LOCAL_WORLD_SIZE``, else 1), less ``workers`` DataLoader worker processes; at
    least one. The share is rounded down: a thread without a CPU to run on is what spins."""
    cpus = available_cpus() if cpus is None else cpus
    local = local_processes or int(os.environ.get("LOCAL_WORLD_SIZE") or 1)
    return max(1, math.floor(cpus / local + 1e-9) - workers)


def cgroup_cpu_quota(cgroup_root: Path, proc_cgroup: Path) -> float | None:
    """The CPU bandwidth limit of this process's cgroup in CPUs, or None when it has none (or the
    cgroup file system is not there, as on macOS). Quotas nest: the lowest along the path from the
    process's cgroup up to the root counts."""
    memberships = _memberships(proc_cgroup)
    v2 = _cgroup_dir(cgroup_root, memberships.get("", "/"))
    if (cgroup_root / "cgroup.controllers").exists():  # the unified (v2) hierarchy is mounted here
        return _lowest(v2, cgroup_root, _v2_quota)
    for mount in _V1_CPU_MOUNTS:
        root = cgroup_root / mount
        if root.is_dir():
            path = next((p for names, p in memberships.items() if "cpu" in names.split(",")), "/")
            return _lowest(_cgroup_dir(root, path), root, _v1_quota)
    return None


def _affinity_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _memberships(proc_cgroup: Path) -> dict[str, str]:
    """/proc/self/cgroup as {controllers: path}: ``0::/path`` (v2, controllers ''), or
    ``4:cpu,cpuacct:/path`` (v1)."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return {}
    memberships = {}
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) == 3:
            memberships[parts[1]] = parts[2]
    return memberships


def _cgroup_dir(mount: Path, path: str) -> Path:
    """The process's cgroup folder under ``mount``. Inside a container with its own cgroup
    namespace the path reads ``/`` (the mount is the container's cgroup); a path that does not
    exist under the mount (a namespaced view of a host path) falls back to the mount itself."""
    folder = mount / path.strip("/")
    return folder if folder.is_dir() else mount


def _lowest(folder: Path, mount: Path, read) -> float | None:
    quotas = []
    while True:
        quota = read(folder)
        if quota is not None:
            quotas.append(quota)
        if folder == mount or mount not in folder.parents:
            break
        folder = folder.parent
    return min(quotas) if quotas else None


def _v2_quota(folder: Path) -> float | None:
    """``cpu.max`` holds ``$MAX $PERIOD`` in microseconds, ``max`` for no limit."""
    try:
        fields = (folder / "cpu.max").read_text().split()
    except OSError:
        return None
    if len(fields) != 2 or fields[0] == "max":
        return None
    return _ratio(fields[0], fields[1])


def _v1_quota(folder: Path) -> float | None:
    """``cpu.cfs_quota_us`` is -1 for no limit."""
    try:
        quota = (folder / "cpu.cfs_quota_us").read_text().strip()
        period = (folder / "cpu.cfs_period_us").read_text().strip()
    except OSError:
        return None
    return None if quota.startswith("-") else _ratio(quota, period)


def _ratio(quota: str, period: str) -> float | None:
    try:
        quota_us, period_us = int(quota), int(period)
    except ValueError:
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None
