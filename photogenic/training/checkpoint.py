"""Resumable checkpoints: everything a killed run needs to continue as if never stopped.

A checkpoint is a folder ``step-NNNNNNNN/`` holding ``state.pt`` (U-Net, EMA, optimizer, LR
scheduler, RNG states, data position, best-so-far) and ``meta.json`` (the step and the sha256 of
``state.pt``). It is written into a temporary folder and renamed into place, so a checkpoint
folder either is complete or does not exist; the checksum catches a file damaged afterwards.
Loading takes the newest checkpoint that verifies and falls back, with a warning, to the one
before it.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from typing import Any

import torch

log = logging.getLogger(__name__)

_NAME = re.compile(r"^step-(\d{8})$")


@dataclass
class Checkpoint:
    step: int
    path: str
    state: dict[str, Any]


def checkpoint_dirs(folder: str) -> list[tuple[int, str]]:
    """(step, path) of the checkpoints in ``folder``, oldest first."""
    if not os.path.isdir(folder):
        return []
    found = [(int(m.group(1)), os.path.join(folder, n)) for n in os.listdir(folder) if (m := _NAME.match(n))]
    return sorted(found)


def save_checkpoint(folder: str, step: int, state: dict[str, Any], keep: int) -> str:
    os.makedirs(folder, exist_ok=True)
    target = os.path.join(folder, f"step-{step:08d}")
    tmp = os.path.join(folder, f".step-{step:08d}.tmp-{uuid.uuid4().hex[:8]}")
    os.makedirs(tmp)
    try:
        buffer = io.BytesIO()
        torch.save(state, buffer)
        data = buffer.getvalue()
        _write(os.path.join(tmp, "state.pt"), data)
        meta = {"step": step, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        _write(os.path.join(tmp, "meta.json"), json.dumps(meta).encode())
        if os.path.exists(target):  # a rerun of the same step: replace
            shutil.rmtree(target)
        os.replace(tmp, target)
        _fsync_dir(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for _, old in checkpoint_dirs(folder)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def load_latest(folder: str) -> Checkpoint | None:
    """The newest checkpoint that verifies; damaged ones are skipped with a warning."""
    for step, path in reversed(checkpoint_dirs(folder)):
        try:
            return Checkpoint(step, path, _load(path))
        except (OSError, ValueError, RuntimeError, EOFError, KeyError) as exc:
            log.warning("checkpoint %s is damaged (%s); falling back to the one before it", path, exc)
    return None


def _load(path: str) -> dict[str, Any]:
    with open(os.path.join(path, "meta.json"), "rb") as handle:
        meta = json.loads(handle.read())
    with open(os.path.join(path, "state.pt"), "rb") as handle:
        data = handle.read()
    if hashlib.sha256(data).hexdigest() != meta["sha256"]:
        raise ValueError("state.pt does not match the checksum in meta.json")
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)


def remove_stale_temporaries(folder: str) -> None:
    if os.path.isdir(folder):
        for name in os.listdir(folder):
            if ".tmp-" in name:
                shutil.rmtree(os.path.join(folder, name), ignore_errors=True)


def _write(path: str, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_dir(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
