"""Resumable checkpoints: everything a killed run needs to continue as if never stopped, stored
without pickle.

A checkpoint is a folder ``step-NNNNNNNN/`` holding
- ``tensors.safetensors``: every tensor and array of the state (U-Net, EMA, optimizer moments,
  RNG states), in safetensors, a format that holds data only;
- ``state.json``: the rest of the state (LR scheduler, optimizer hyper-parameters, RNG
  counters, data position, best-so-far), with the tensors' places marked;
- ``meta.json``: the step, the format and the sha256 of each file.

Loading a pickle runs whatever code its author put in it, and a checkpoint folder is as writable
as the data root (a shared volume, say): the sha256 beside a file says nothing about who wrote
it. So nothing here is unpickled but ``rest.pt``, for a value of a type the two files above cannot
hold (none in today's state), and a checkpoint of the older format (``state.pt``); both are read
with ``torch.load(weights_only=True)``, which refuses every global outside torch's own safe set
and ``ALLOWED_GLOBALS``.

A checkpoint is written into a temporary folder and renamed into place, so a checkpoint folder
either is complete or does not exist; the checksums catch a file damaged afterwards. Loading
takes the newest checkpoint that verifies and falls back, with a warning, to the one before it.
Tensors, floats (JSON keeps every float's exact value) and integers come back bit for bit, so a
resumed run continues exactly as the uninterrupted one would have.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import pickle
import re
import shutil
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from photogenic.dataset.atomic import fsync_folder
from photogenic.safety.parsing import UntrustedInput, parse_json

log = logging.getLogger(__name__)

_NAME = re.compile(r"^step-(\d{8})$")
FORMAT = 2
TENSORS, STATE, REST, META = "tensors.safetensors", "state.json", "rest.pt", "meta.json"
#: the pickle of format 1, read only with weights_only=True
LEGACY_STATE = "state.pt"
#: globals ``torch.load(weights_only=True)`` may build besides torch's own: numpy's array
#: reconstruction, which format 1's NumPy RNG state needs, and nothing that can run code
ALLOWED_GLOBALS = [np.dtype, np.ndarray, (getattr(np, "_core", None) or np.core).multiarray._reconstruct,
                   type(np.dtype(np.uint32))]
#: markers of state.json; a dict whose keys are not all plain strings is stored as items
_TENSOR, _ARRAY, _TUPLE, _ITEMS, _REST, _NUMPY = "__tensor__", "__ndarray__", "__tuple__", "__items__", "__rest__", \
    "__numpy__"


class DamagedCheckpoint(ValueError):
    """The checkpoint's files do not verify or cannot be read back."""


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
        files = encode_state(state)
        for name, data in files.items():
            _write(os.path.join(tmp, name), data)
        meta = {"step": step, "format": FORMAT, "sha256": {n: hashlib.sha256(d).hexdigest() for n, d in files.items()}}
        _write(os.path.join(tmp, META), json.dumps(meta).encode())
        if os.path.exists(target):  # a rerun of the same step: replace
            shutil.rmtree(target)
        os.replace(tmp, target)
        fsync_folder(folder)
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
            return Checkpoint(step, path, load_checkpoint(path))
        except (OSError, ValueError, RuntimeError, EOFError, KeyError, pickle.UnpicklingError) as exc:
            log.warning("checkpoint %s is damaged or unsafe (%s); falling back to the one before it", path, exc)
    return None


def load_checkpoint(path: str) -> dict[str, Any]:
    """The state in checkpoint folder ``path``; raises if it does not verify or is unsafe."""
    with open(os.path.join(path, META), "rb") as handle:
        meta = json.loads(handle.read())
    if meta.get("format", 1) == 1:
        data = _read(path, LEGACY_STATE, meta["sha256"])
        return _weights_only(data)
    names = set(meta["sha256"])
    if not {TENSORS, STATE} <= names <= {TENSORS, STATE, REST}:
        raise DamagedCheckpoint(f"{META} lists the files {sorted(names)!r:.200}, not a checkpoint's")
    return decode_state({name: _read(path, name, meta["sha256"][name]) for name in names})


def _read(folder: str, name: str, sha256: str) -> bytes:
    with open(os.path.join(folder, name), "rb") as handle:
        data = handle.read()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise DamagedCheckpoint(f"{name} does not match the checksum in {META}")
    return data


# -- the state as safetensors + JSON ------------------------------------------------------------


def encode_state(state: dict[str, Any]) -> dict[str, bytes]:
    """The files that hold ``state``: tensors and arrays in safetensors, the rest in JSON, and
    values of any other type in ``rest.pt`` (only when there are such values)."""
    tensors: dict[str, torch.Tensor] = {}
    rest: list[Any] = []
    seen: set[int] = set()

    def encode(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            tensor = value.detach().cpu().contiguous()
            if tensor.numel() and tensor.untyped_storage().data_ptr() in seen:  # safetensors refuses shared memory
                tensor = tensor.clone()
            if tensor.numel():
                seen.add(tensor.untyped_storage().data_ptr())
            key = f"t{len(tensors)}"
            tensors[key] = tensor
            return {_TENSOR: key}
        if isinstance(value, np.ndarray):  # as its bytes: safetensors lacks some of NumPy's dtypes
            key = f"t{len(tensors)}"
            tensors[key] = torch.frombuffer(bytearray(np.ascontiguousarray(value).tobytes()) or bytearray(1),
                                            dtype=torch.uint8)
            return {_ARRAY: key, "dtype": value.dtype.str, "shape": list(value.shape)}
        if isinstance(value, np.generic):
            return {_NUMPY: value.item(), "dtype": value.dtype.str}
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, tuple):
            return {_TUPLE: [encode(v) for v in value]}
        if isinstance(value, list):
            return [encode(v) for v in value]
        if isinstance(value, dict):
            if all(isinstance(k, str) and not k.startswith("__") for k in value):
                return {k: encode(v) for k, v in value.items()}
            return {_ITEMS: [[encode(k), encode(v)] for k, v in value.items()]}
        rest.append(value)
        return {_REST: len(rest) - 1}

    tree = encode(state)
    files = {TENSORS: save_tensors(tensors), STATE: json.dumps(tree).encode("utf-8")}
    if rest:
        buffer = io.BytesIO()
        torch.save(rest, buffer)
        files[REST] = buffer.getvalue()
    return files


def decode_state(files: dict[str, bytes]) -> dict[str, Any]:
    """``encode_state``'s files back into the state."""
    try:
        tree = parse_json(files[STATE], STATE)
        tensors = load_tensors(files[TENSORS])
    except (UntrustedInput, KeyError) as exc:
        raise DamagedCheckpoint(f"{STATE} or {TENSORS} cannot be read: {exc}") from None
    rest = _weights_only(files[REST]) if REST in files else []

    def decode(node: Any) -> Any:
        if isinstance(node, list):
            return [decode(v) for v in node]
        if not isinstance(node, dict):
            return node
        if _TENSOR in node:
            return tensors[node[_TENSOR]]
        if _ARRAY in node:
            dtype = np.dtype(node["dtype"])
            raw = tensors[node[_ARRAY]].numpy().tobytes()
            count = int(np.prod(node["shape"], dtype=np.int64))
            return np.frombuffer(raw, dtype=dtype, count=count).reshape(node["shape"]).copy()
        if _NUMPY in node:
            return np.dtype(node["dtype"]).type(node[_NUMPY])
        if _TUPLE in node:
            return tuple(decode(v) for v in node[_TUPLE])
        if _ITEMS in node:
            return {_hashable(decode(k)): decode(v) for k, v in node[_ITEMS]}
        if _REST in node:
            return rest[node[_REST]]
        return {k: decode(v) for k, v in node.items()}

    state = decode(tree)
    if not isinstance(state, dict):
        raise DamagedCheckpoint(f"{STATE} does not hold a state")
    return state


def _hashable(key: Any) -> Any:
    if isinstance(key, (list, dict)):
        raise DamagedCheckpoint(f"{STATE} has a dictionary key that cannot be one: {key!r:.80}")
    return key


def _weights_only(data: bytes) -> Any:
    """Unpickle ``data`` refusing every global outside torch's safe set and ALLOWED_GLOBALS."""
    with torch.serialization.safe_globals(ALLOWED_GLOBALS):
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


# -- files ---------------------------------------------------------------------------------------


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

