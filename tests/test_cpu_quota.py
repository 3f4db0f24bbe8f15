"""The CPUs a process really has: cgroup v2 and v1 quotas faked in a temp dir, affinity, the
DataLoader workers and the training processes on the machine; and the trainer sizing torch's
thread pool from them when ``training.<stage>.threads`` is unset."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from photogenic import cpu_quota
from photogenic.config import load_config
from photogenic.cpu_quota import available_cpus, cgroup_cpu_quota, compute_threads
from tests.support.training_fixtures import tiny_overrides, write_dataset


def _v2(root: Path, membership: str, limits: dict[str, str]) -> tuple[Path, Path]:
    """A cgroup v2 hierarchy under ``root``: ``limits`` maps cgroup paths to cpu.max contents."""
    (root / "cgroup.controllers").parent.mkdir(parents=True, exist_ok=True)
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    for path, cpu_max in limits.items():
        folder = root / path.strip("/")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "cpu.max").write_text(cpu_max + "\n")
    proc = root.parent / "proc-self-cgroup"
    proc.write_text(f"0::{membership}\n")
    return root, proc


def _v1(root: Path, mount: str, membership: str, quota_us: int, period_us: int = 100_000) -> tuple[Path, Path]:
    """A cgroup v1 cpu controller mounted at ``root/mount``, the process in ``membership``."""
    folder = root / mount / membership.strip("/")
    folder.mkdir(parents=True)
    (root / mount / "cpu.cfs_quota_us").write_text("-1\n")  # the root cgroup: no limit
    (root / mount / "cpu.cfs_period_us").write_text("100000\n")
    (folder / "cpu.cfs_quota_us").write_text(f"{quota_us}\n")
    (folder / "cpu.cfs_period_us").write_text(f"{period_us}\n")
    proc = root.parent / "proc-self-cgroup"
    proc.write_text(f"12:pids:/x\n4:cpu,cpuacct:{membership}\n1:name=systemd:/x\n")
    return root, proc


@pytest.fixture
def node_of_64_cores(monkeypatch):
    """A process allowed on 64 cores, as on a big node with no cpuset."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)


def test_a_pod_limited_to_two_cpus_on_a_64_core_node_gets_two(tmp_path, node_of_64_cores):
    # a Kubernetes CPU limit of 2 in a container with its own cgroup namespace: cpu.max at the root
    root, proc = _v2(tmp_path / "cgroup", "/", {"/": "200000 100000"})
    assert available_cpus(root, proc) == 2.0
    assert compute_threads(workers=1, cpus=available_cpus(root, proc)) == 1
    assert compute_threads(workers=0, cpus=available_cpus(root, proc)) == 2


def test_v2_quotas_nest_and_the_lowest_counts(tmp_path, node_of_64_cores):
    root, proc = _v2(tmp_path / "cgroup", "/kubepods/pod1/ctr",
                     {"/kubepods": "max 100000", "/kubepods/pod1": "150000 100000", "/kubepods/pod1/ctr": "max 100000"})
    assert cgroup_cpu_quota(root, proc) == 1.5
    assert available_cpus(root, proc) == 1.5
    assert compute_threads(cpus=1.5) == 1  # rounded down: a thread without a CPU is what spins


def test_v2_without_a_limit_falls_back_to_the_affinity(tmp_path, node_of_64_cores):
    root, proc = _v2(tmp_path / "cgroup", "/user.slice", {"/user.slice": "max 100000"})
    assert cgroup_cpu_quota(root, proc) is None
    assert available_cpus(root, proc) == 64


def test_v1_cfs_quota(tmp_path, node_of_64_cores):
    root, proc = _v1(tmp_path / "cgroup", "cpu,cpuacct", "/kubepods/burstable/pod2/ctr", quota_us=400_000)
    assert available_cpus(root, proc) == 4.0
    # -1: no limit
    (root / "cpu,cpuacct/kubepods/burstable/pod2/ctr/cpu.cfs_quota_us").write_text("-1\n")
    assert available_cpus(root, proc) == 64


def test_affinity_below_the_quota_wins(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3, 5}, raising=False)  # taskset -c 3,5
    root, proc = _v2(tmp_path / "cgroup", "/", {"/": "800000 100000"})
    assert available_cpus(root, proc) == 2


def test_no_cgroup_file_system_means_the_affinity(tmp_path, node_of_64_cores):
    assert cgroup_cpu_quota(tmp_path / "nothing", tmp_path / "no-proc") is None
    assert available_cpus(tmp_path / "nothing", tmp_path / "no-proc") == 64


def test_threads_are_shared_by_the_training_processes_on_the_machine(monkeypatch):
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")  # torchrun --nproc_per_node 8
    assert compute_threads(workers=2, cpus=64) == 6
    assert compute_threads(workers=4, cpus=16) == 1  # never below one
    monkeypatch.delenv("LOCAL_WORLD_SIZE")
    assert compute_threads(workers=0, cpus=0.5) == 1


def test_trainer_sizes_torch_threads_from_the_quota_when_unset(tmp_path, monkeypatch, node_of_64_cores):
    from photogenic.stages.runner import run_stage

    root, proc = _v2(tmp_path / "cgroup", "/", {"/": "500000 100000"})  # a 5-CPU limit
    monkeypatch.setattr(cpu_quota, "CGROUP_ROOT", root)
    monkeypatch.setattr(cpu_quota, "PROC_CGROUP", proc)
    write_dataset(tmp_path, "ingested", n=8)
    before = torch.get_num_threads()
    try:
        cfg = load_config(None, tiny_overrides(tmp_path, steps=1, **{"training.pretrain.workers": 1}))
        run_stage("pretrain", cfg, progress=False)
        # 5 CPUs, one of them for the DataLoader worker (not the 64 cores, nor torch's own choice)
        assert torch.get_num_threads() == 4
        cfg = load_config(None, tiny_overrides(tmp_path, steps=1, **{"training.pretrain.threads": 1}))
        run_stage("pretrain", cfg, progress=False)
        assert torch.get_num_threads() == 1  # the setting, where given, decides
    finally:
        torch.set_num_threads(before)
