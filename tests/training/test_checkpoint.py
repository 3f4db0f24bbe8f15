"""Checkpoints hold data, not code: safetensors and JSON, and ``weights_only`` unpickling with an
allow-list for what is left; whoever can write the data root cannot run code through --resume,
and a resumed run stays bit-exact."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import shutil

import numpy as np
import pytest
import torch

from photogenic.config import load_config
from photogenic.training import checkpoint as ckpt
from tests.support.training_fixtures import tiny_overrides, write_dataset


class _Payload:
    """What a hostile pickle carries: a call made while it is unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _legacy_checkpoint(folder, step, state):
    """A checkpoint as the format before this one wrote it: state.pt (a pickle) and its sha256."""
    path = folder / f"step-{step:08d}"
    path.mkdir(parents=True)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    (path / "state.pt").write_bytes(buffer.getvalue())
    (path / "meta.json").write_text(json.dumps({"step": step, "sha256": hashlib.sha256(buffer.getvalue()).hexdigest(),
                                                "bytes": len(buffer.getvalue())}))


def test_a_planted_pickle_never_runs_on_resume(tmp_path):
    folder = tmp_path / "checkpoints"
    marker = tmp_path / "pwned"
    ckpt.save_checkpoint(str(folder), 2, {"step": 2, "w": torch.ones(3)}, keep=5)
    # someone with write access to the data root plants a newer checkpoint; its checksum is right
    _legacy_checkpoint(folder, 4, {"step": 4, "w": _Payload(marker)})
    found = ckpt.load_latest(str(folder))
    assert not marker.exists()
    assert found is not None and found.step == 2  # the planted one is refused, the one before taken


def test_a_planted_rest_file_never_runs_either(tmp_path):
    folder = tmp_path / "checkpoints"
    marker = tmp_path / "pwned"
    path = ckpt.save_checkpoint(str(folder), 2, {"step": 2, "device": torch.device("cpu")}, keep=5)
    assert sorted(os.listdir(path)) == ["meta.json", "rest.pt", "state.json", "tensors.safetensors"]
    assert ckpt.load_latest(str(folder)).state["device"] == torch.device("cpu")  # weights_only knows devices
    buffer = io.BytesIO()
    torch.save([_Payload(marker)], buffer)
    (folder / "step-00000002" / "rest.pt").write_bytes(buffer.getvalue())
    meta = json.loads((folder / "step-00000002" / "meta.json").read_text())
    meta["sha256"]["rest.pt"] = hashlib.sha256(buffer.getvalue()).hexdigest()
    (folder / "step-00000002" / "meta.json").write_text(json.dumps(meta))
    assert ckpt.load_latest(str(folder)) is None and not marker.exists()


def test_meta_cannot_point_the_loader_at_other_files(tmp_path):
    folder = tmp_path / "checkpoints"
    path = ckpt.save_checkpoint(str(folder), 2, {"step": 2}, keep=5)
    meta = json.loads((folder / "step-00000002" / "meta.json").read_text())
    meta["sha256"]["../../outside.pt"] = "0" * 64
    (folder / "step-00000002" / "meta.json").write_text(json.dumps(meta))
    assert ckpt.load_latest(str(folder)) is None and os.path.isdir(path)


def test_the_trainer_s_state_round_trips_exactly_without_pickle():
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import EMAModel

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scheduler = get_scheduler("cosine", optimizer, num_warmup_steps=2, num_training_steps=10)
    ema = EMAModel(model.parameters(), decay=0.99)
    for _ in range(3):
        model(torch.randn(3, 4)).sum().backward()
        optimizer.step()
        optimizer.zero_grad()
        scheduler.step()
        ema.step(model.parameters())
    state = {"progress": {"step": 3, "best_metric": 0.1 + 0.2, "since_best": 0, "best_step": None,
                          "validations": [{"step": 1, "val_loss": float("nan")}], "grids": []},
             "unet": model.state_dict(), "ema": ema.state_dict(), "optimizer": optimizer.state_dict(),
             "lr_scheduler": scheduler.state_dict(),
             "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
                     "cuda": None},
             "data_position": 96}
    files = ckpt.encode_state(state)
    assert set(files) == {"tensors.safetensors", "state.json"}  # nothing left for a pickle
    _assert_identical(state, ckpt.decode_state(files))
    # the format before this one still loads, through weights_only and the NumPy allow-list
    buffer = io.BytesIO()
    torch.save(state, buffer)
    _assert_identical(state, ckpt._weights_only(buffer.getvalue()))


def _assert_identical(a, b, where="state"):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), where
        for key in a:
            _assert_identical(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_identical(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and a != a:
        assert isinstance(b, float) and b != b, where
    else:
        assert type(a) is type(b) and a == b, where


def test_a_resumed_run_is_bit_exact_with_the_uninterrupted_one(tmp_path):
    from photogenic.stages.runner import run_stage

    write_dataset(tmp_path, "ingested", n=12)
    cfg = load_config(None, tiny_overrides(tmp_path, steps=4, **{"training.pretrain.checkpoint_every": 2,
                                                                "training.pretrain.validate_every": 100}))
    run_stage("pretrain", cfg, progress=False)
    checkpoints = tmp_path / "models" / "pretrained.work" / "checkpoints"
    straight = ckpt.load_latest(str(checkpoints))
    assert straight.step == 4
    assert not [p for p in checkpoints.rglob("*") if p.suffix in (".pt", ".pkl")]  # no pickle written
    # killed after the checkpoint at step 2: the resumed run must reach the same bits
    shutil.rmtree(checkpoints / "step-00000004")
    run_stage("pretrain", cfg, progress=False, resume=True)
    resumed = ckpt.load_latest(str(checkpoints))
    assert resumed.step == 4
    for part in ("unet", "ema", "optimizer", "lr_scheduler", "data_position"):
        _assert_identical(straight.state[part], resumed.state[part], part)


@pytest.mark.parametrize("damage", ["state.json", "tensors.safetensors"])
def test_a_damaged_file_falls_back_to_the_checkpoint_before(tmp_path, damage):
    folder = tmp_path / "checkpoints"
    ckpt.save_checkpoint(str(folder), 2, {"step": 2, "w": torch.ones(3)}, keep=5)
    ckpt.save_checkpoint(str(folder), 4, {"step": 4, "w": torch.ones(3) * 4}, keep=5)
    (folder / "step-00000004" / damage).write_bytes(b"garbage")
    found = ckpt.load_latest(str(folder))
    assert found.step == 2 and torch.equal(found.state["w"], torch.ones(3))
