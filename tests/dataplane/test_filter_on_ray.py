"""The auto-filter on Ray Data (a local Ray): a killed actor costs a retry of its chunk and
loses no row; a killed run resumes from the shards it had finished and writes the same bytes
as an uninterrupted one; model scorers never see a row an earlier scorer rejected."""

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from photogenic.dataset.store import Dataset
from photogenic.filtering.cascade import steps_of
from photogenic.filtering.registry import build_scorers
from photogenic.stages.auto_filter import PARTS, auto_filter
from photogenic.stages.ingest import ingest
from tests.conftest import config_for, wds_members, write_tar
from tests.dataplane.toy_model import register

REPO = Path(__file__).resolve().parents[2]
IMAGES = 12


def _pool(root: Path) -> None:
    """Flat pictures of many brightnesses (the toy model keeps the bright ones), and two too
    small for the size scorer: a model scorer must never see those."""
    members, rng = [], np.random.default_rng(0)
    for key in range(IMAGES):
        size = (60, 60) if key in (3, 8) else (160, 140)
        picture = (20 * key + rng.integers(0, 30, (size[1], size[0], 3))).astype(np.uint8)
        path = root / f"{key}.png"
        Image.fromarray(picture).save(path)
        members += wds_members(f"{key:09d}", path.read_bytes(), f"picture {key}", ext="png")
    write_tar(root / "raw" / "p.tar", members)


def _config(root: Path, *overrides: str):
    return config_for(root, "ingest.sources.0.uri=raw/p.tar", "ingest.shard_max_images=2",
                      "filter.technical.enabled=false", "filter.ocr.enabled=false", "filter.nsfw.enabled=false",
                      "filter.toy_model.enabled=true", "filter.batch_size=1", *overrides)


@pytest.fixture
def ingested(tmp_path, monkeypatch):
    register(monkeypatch)
    root = tmp_path / "data"
    root.mkdir()
    _pool(root)
    ingest(_config(root), progress=False)
    return root


def _md5s(folder: Path, names=None) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and (names is None or p.name in names)}


TABLES = ("manifest.parquet", "rejected.parquet", "quarantine.parquet")


def test_the_model_scorer_runs_in_its_own_step_after_the_cheap_ones(ingested):
    steps = steps_of(build_scorers(_config(ingested)))
    # the model between the manifest scorers and the near-duplicate hashes (pool-wide, decided last)
    assert [[s.name for s in step] for step in steps] == [["size", "concept"], ["toy_model"], ["dedup"]]
    assert [step[-1].holds_model for step in steps] == [False, True, False]


def test_an_actor_killed_mid_stage_loses_nothing(ingested):
    expected = auto_filter(_config(ingested, "filter.workers=0"), progress=False)
    wanted = _md5s(ingested / "datasets" / "candidates", TABLES)  # the card holds the die_once setting

    marker = ingested / "killed.pid"
    result = auto_filter(_config(ingested, "filter.workers=2", f"filter.toy_model.die_once={marker}"),
                         progress=False)
    assert marker.exists() and int(marker.read_text()) != os.getpid()  # an actor died, not this process
    assert result.funnel == expected.funnel and result.shards == {"scored": IMAGES // 2, "reused": 0}
    assert result.model_rows_on_rejected == 0
    assert _md5s(ingested / "datasets" / "candidates", TABLES) == wanted
    assert result.funnel[1] == ("size", IMAGES - 2)  # the two small ones never reached the model


CHILD = """
import sys
sys.path.insert(0, {repo!r})
from tests.dataplane.toy_model import register
from tests.conftest import config_for
from photogenic.stages.auto_filter import auto_filter
register()
from tests.dataplane.test_filter_on_ray import _config
from pathlib import Path
auto_filter(_config(Path({root!r}), *{overrides!r}), progress=False)
"""


def test_a_killed_run_resumes_from_its_finished_shards_and_writes_the_same_bytes(ingested):
    # the same parameters in every run: they are in the card (the workers too)
    slow = "filter.toy_model.seconds_per_call=0.3"
    auto_filter(_config(ingested, "filter.workers=1", slow), progress=False)
    candidates = ingested / "datasets" / "candidates"
    wanted = _md5s(candidates)
    assert not (candidates / PARTS).exists()  # the parts are gone once the dataset is written

    overrides = ["filter.workers=1", slow]
    child = subprocess.Popen([sys.executable, "-c", CHILD.format(repo=str(REPO), root=str(ingested),
                                                                 overrides=overrides)],
                             start_new_session=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    parts = candidates / PARTS
    deadline = time.monotonic() + 120
    while len(list(parts.glob("part-*.parquet"))) < 2 and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(child.pid, signal.SIGKILL)  # the driver and the Ray it started, mid-stage
    child.wait()
    finished = len(list(parts.glob("part-*.parquet")))
    assert 2 <= finished < IMAGES // 2, "the run was to be killed in the middle"

    result = auto_filter(_config(ingested, "filter.workers=1", slow), progress=False)
    assert result.shards == {"scored": IMAGES // 2 - finished, "reused": finished}
    assert _md5s(candidates) == wanted


def test_parts_made_with_other_parameters_are_not_reused(ingested):
    auto_filter(_config(ingested, "filter.workers=0"), progress=False)
    candidates = ingested / "datasets" / "candidates"
    from photogenic.dataplane.parts import ShardParts

    stale = ShardParts(str(candidates / PARTS), "another fingerprint")
    for key in {r["shard"] for r in Dataset(str(ingested / "datasets" / "ingested")).read_manifest().to_pylist()}:
        stale.write(key, Dataset(str(candidates)).read_manifest().slice(0, 0))
    result = auto_filter(_config(ingested, "filter.workers=0", "filter.toy_model.min_mean=10"), progress=False)
    assert result.shards == {"scored": IMAGES // 2, "reused": 0}
