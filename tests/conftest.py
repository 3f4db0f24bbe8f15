"""Shared fixtures. Every test runs in its own temp dir with its own ZenML and MLflow homes,
and nothing here touches the network."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Run in tmp_path; keep tool state (ZenML, MLflow, DVC, GE) inside it and offline."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ZENML_CONFIG_PATH", str(tmp_path / ".zen-home"))
    monkeypatch.setenv("ZENML_ANALYTICS_OPT_IN", "false")
    monkeypatch.setenv("ZENML_LOGGING_VERBOSITY", "WARN")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    # MLflow 3 refuses a file store unless told: the tests want one, inside tmp_path
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    monkeypatch.setenv("DVC_SITE_CACHE_DIR", str(tmp_path / "dvc-site-cache"))  # else /var/tmp/dvc
    monkeypatch.setenv("GX_ANALYTICS_ENABLED", "false")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home" / ".cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    # dvc.yaml stages call the `photogenic` command: make this interpreter's scripts findable
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    (tmp_path / "home").mkdir()
    yield tmp_path
    _forget_process_state()


def _forget_process_state():
    """ZenML and MLflow keep their store in process-wide singletons, read once from the
    environment; a later test must not find an earlier test's ZenML store (its step cache, its
    stacks) or MLflow tracking URI."""
    if "zenml" in sys.modules:
        from zenml.client import Client
        from zenml.config.global_config import GlobalConfiguration

        Client._reset_instance()
        GlobalConfiguration._reset_instance()
    if "mlflow" in sys.modules:
        import mlflow

        mlflow.set_tracking_uri(None)  # back to $MLFLOW_TRACKING_URI, which monkeypatch restores
        # the experiment set_experiment chose lives in the last test's store, not the next one's
        mlflow.tracking.fluent._active_experiment_id = None
    # ZenML's MLflow tracker exports the step's experiment and run to the environment; a later
    # test's subprocesses would look for them in their own store
    for name in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID"):
        os.environ.pop(name, None)


def image_bytes(size=(64, 48), fmt="JPEG", mode="RGB", seed=0, **save) -> bytes:
    """A small random image encoded in ``fmt``; different seeds give different bytes."""
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4, "L": 1, "LA": 2, "CMYK": 4}[mode]
    pixels = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    image = Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels, mode)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save)
    return buffer.getvalue()


def write_tar(path: Path, members: list[tuple[str, bytes]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def wds_members(key: str, image: bytes | None, caption: bytes | str | None = None, meta: dict | None = None,
                ext: str = "jpg") -> list[tuple[str, bytes]]:
    """The members img2dataset writes for one sample."""
    members = []
    if image is not None:
        members.append((f"{key}.{ext}", image))
    if caption is not None:
        members.append((f"{key}.txt", caption.encode() if isinstance(caption, str) else caption))
    if meta is not None:
        members.append((f"{key}.json", json.dumps(meta).encode()))
    return members


def config_for(root: Path, *overrides: str):
    from photogenic.config import load_config

    return load_config(None, [f"data.root={root}", "ingest.workers=0", *overrides])


@pytest.fixture
def dvc_project(tmp_path):
    """A throwaway photogenic project: git + DVC initialised, the stage code and dvc.yaml copied,
    and a small sample pool in params.yaml."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("dvc.yaml", ".dvcignore", "configs"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, project / name)
    shutil.copytree(REPO / "photogenic", project / "photogenic", ignore=shutil.ignore_patterns("__pycache__"))
    run = lambda *args: subprocess.run(args, cwd=project, check=True, capture_output=True, text=True)  # noqa: E731
    run("git", "init", "-q")
    run("git", "config", "user.email", "ci@example.invalid")
    run("git", "config", "user.name", "ci")
    run(sys.executable, "-m", "dvc", "init", "-q")
    run(sys.executable, "-m", "dvc", "remote", "add", "-d", "local", str(tmp_path / "dvc-remote"))
    return project


def smooth_image_bytes(size=(64, 48), seed=0, fmt="JPEG") -> bytes:
    """A small image with smooth structure (gradients and a disc), unlike ``image_bytes``' noise:
    what resampling tests need to see edges and a colour survive."""
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    base = rng.integers(40, 200, 3)
    pixels = np.stack([base[c] + 40 * np.sin((x * (c + 1) + y) / max(w, h) * 6) for c in range(3)], -1)
    cx, cy, r = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h, 0.25 * min(w, h)
    pixels[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = rng.integers(0, 256, 3)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB").save(buffer, fmt, quality=95)
    return buffer.getvalue()


#: (width, height, training caption, caption source) of the hand-made captioned dataset
CAPTIONED_ROWS = [
    (64, 48, "a red cat on a green field", "human"),
    (200, 160, "a blue vintage car on a beach", "model"),
    (100, 150, "a yellow flower in a studio", "alt_text"),
    (300, 140, "a mountain range at golden hour", "human"),
    (130, 128, "a cake with pink frosting", "human"),
    (90, 90, "   ", "alt_text"),
    (160, 240, "a portrait in a purple sweater", "model"),
    (256, 192, "a teal house with a pitched roof", "human"),
]


def make_captioned(root: Path, rows=CAPTIONED_ROWS, name: str = "captioned"):
    """Ingest hand-made images into ``<root>/datasets/ingested``, then derive a dataset named
    ``name`` from it that adds the caption stage's columns (training_caption, _source), as the
    caption stage does; returns the config pointing at ``root``."""
    import pyarrow as pa

    from photogenic.dataset.schema import QUARANTINE_SCHEMA
    from photogenic.dataset.store import Dataset, repoint_shards
    from photogenic.paths import dataset_dir
    from photogenic.stages.ingest import ingest

    members = []
    for index, (w, h, caption, _) in enumerate(rows):
        members += wds_members(f"{index:09d}", smooth_image_bytes((w, h), seed=index), f"alt text {index}")
    write_tar(root / "raw" / "pool" / "00000.tar", members)
    config = config_for(root, "ingest.sources.0.uri=raw/pool/*.tar", "upsample.workers=0", "package.workers=0")
    ingest(config, progress=False)
    source = Dataset(dataset_dir(str(root), "ingested"))
    table = source.read_manifest()
    by_key = {f"{i:09d}": (caption, origin) for i, (_, _, caption, origin) in enumerate(rows)}
    keys = [s.rsplit("#", 1)[1] for s in table["source"].to_pylist()]
    target = Dataset(dataset_dir(str(root), name), name=name)
    table = repoint_shards(table, source, target)
    table = table.append_column("training_caption", pa.array([by_key[k][0] for k in keys], pa.string()))
    table = table.append_column("training_caption_source", pa.array([by_key[k][1] for k in keys], pa.string()))
    target.write(table, QUARANTINE_SCHEMA.empty_table(), {"name": name, "stage": "caption (test stand-in)"})
    return config
