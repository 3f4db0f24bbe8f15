"""Auto-filter cascade throughput against (a) decode-only of the same images and (b) the same
scorers run without ordering on every image, in the same run; which scorers each row reached;
and the cascade's peak memory at two pool sizes.

All three run on the data plane (a local Ray, its start included) with the same 2 workers, the
same manifest rows and the same image reads.
The cascade's advantage over (b) comes from ordering: the cheap scorers (size, technical
quality) reject rows before the expensive models (NSFW detection, OCR text detection) see them,
so its speed-up over (b) is bounded by the share of rows those cheap scorers reject.

    python benchmarks/filter_speed.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import OUT, result, run_benchmark, sample_pool  # noqa: E402

WORKERS = 2
BATCH = 32
#: the expensive model scorers, and the column each writes for every row it scores
MODEL_SCORERS = {"nsfw": "score_nsfw", "ocr": "score_ocr_text_area"}


def ingested(n: int) -> Path:
    """The default config's ingested dataset of an n-sample pool (made once, reused)."""
    from photogenic.config import load_config
    from photogenic.stages.ingest import ingest

    root = OUT / f"filter-speed-{n}"
    pool = sample_pool(n)
    config = load_config(None, [f"data.root={root}", f"ingest.sources.0.uri={pool}/*.tar"])
    ingest(config, progress=False)  # a no-op when the dataset already holds these shards
    return root


def default_config(root: Path):
    from photogenic.config import load_config

    repo = Path(__file__).resolve().parents[1]
    return load_config(repo / "configs" / "default.yaml",
                       [f"data.root={root}", f"filter.workers={WORKERS}", f"filter.batch_size={BATCH}"])


def decode_rate(dataset) -> float:
    """On the data plane, as the cascade runs, its Ray's start included as in the cascade's time."""
    import functools

    from benchmarks import _filter_work
    from photogenic.dataplane.pipeline import Step, map_rows

    rows = dataset.read_manifest().to_pylist()
    step = Step(name="decode", make=functools.partial(_filter_work.Decode, dataset.path), workers=WORKERS)
    started = time.perf_counter()
    for _ in map_rows(rows, lambda row: row, step, key=lambda row: row["shard"], batch_size=BATCH, desc="decode",
                      progress=False):
        pass
    return len(rows) / (time.perf_counter() - started)


def unordered_rate(dataset, scorers) -> float:
    """Every scorer on every image (the calibration's scoring), on the data plane too."""
    from photogenic.filtering.cascade import score_every_row

    rows = dataset.read_manifest().to_pylist()
    started = time.perf_counter()
    score_every_row(dataset, scorers, rows, workers=WORKERS, batch_size=BATCH, progress=False)
    return len(rows) / (time.perf_counter() - started)


def scorer_costs(dataset, scorers, count: int = 24) -> dict[str, float]:
    """Milliseconds per image of each pixel scorer alone, in this process, on the first
    ``count`` images (models loaded before timing): what the declared costs should reflect."""
    rows = dataset.read_manifest().slice(0, count).to_pylist()
    images = [np.asarray(dataset.load_image(row)) for row in rows]
    costs = {}
    for scorer in scorers:
        if scorer.needs_pixels:
            scorer.score(rows[:1], images[:1])  # load the model
            started = time.perf_counter()
            scorer.score(rows, images)
            costs[scorer.name] = 1000 * (time.perf_counter() - started) / len(rows)
    return costs


def photograph_costs(repeats: int = 5) -> dict[str, float]:
    """Milliseconds per image, on one core, of all the technical measures and of decoding the
    JPEG, on the real-photograph test set's clean originals (tests/support/real_photos.py, about
    0.3 MP) and on the same brought up to 6 MP: the cost the measures state, per image size."""
    import io

    from PIL import Image

    from photogenic.imaging.quality import measure_all
    from tests.support.real_photos import real_photo_set

    originals = [photo for photo in real_photo_set() if photo.defect is None]
    sizes = {"0.3mp": [photo.jpeg for photo in originals], "6mp": []}
    for photo in originals:
        image = photo.image
        scale = (6e6 / (image.width * image.height)) ** 0.5
        large = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BICUBIC)
        buffer = io.BytesIO()
        large.save(buffer, format="JPEG", quality=90)
        sizes["6mp"].append(buffer.getvalue())

    def decode(jpeg: bytes) -> np.ndarray:
        return np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"))

    costs = {}
    for size, jpegs in sizes.items():
        arrays = [decode(jpeg) for jpeg in jpegs]
        for what, work, items in (("measures", measure_all, arrays), ("decode", decode, jpegs)):
            best = float("inf")  # the best of a few passes: the machine is shared
            for _ in range(repeats):
                started = time.perf_counter()
                for item in items:
                    work(item)
                best = min(best, (time.perf_counter() - started) / len(items))
            costs[f"{what}_{size}"] = 1000 * best
    return costs


def cascade_run(root: Path) -> dict:
    """One cascade over the ingested dataset, in a child process so its peak RSS is its own."""
    code = f"""
import json, resource, time
from pathlib import Path
import sys
sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
from benchmarks.filter_speed import default_config
from photogenic.dataset.store import Dataset
from photogenic.filtering.cascade import run_cascade
from photogenic.stages.auto_filter import build_scorers
if __name__ == "__main__":
    config = default_config(Path({str(root)!r}))
    dataset = Dataset({str(root / "datasets" / "ingested")!r})
    started = time.perf_counter()
    result = run_cascade(dataset, build_scorers(config), workers={WORKERS}, batch_size={BATCH}, progress=False)
    seconds = time.perf_counter() - started
    table = result.table
    scored = {{name: table[column].is_valid().to_pylist() for name, column in {MODEL_SCORERS!r}.items()}}
    print(json.dumps({{"rows": table.num_rows, "seconds": seconds, "funnel": result.funnel,
                      "scored": {{k: sum(v) for k, v in scored.items()}},
                      "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "worker_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}}))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller pools, under a minute")
    args = parser.parse_args()

    from photogenic.dataset.store import Dataset
    from photogenic.stages.auto_filter import build_scorers

    small, large = (40, 80) if args.quick else (500, 1000)
    root = ingested(large)
    dataset = Dataset(str(root / "datasets" / "ingested"))
    scorers = build_scorers(default_config(root))
    print(f"pool: {large} samples, {dataset.num_rows()} ingested rows; scorers in cascade order: "
          + ", ".join(f"{s.name} ({s.cost_ms:g} ms)" for s in scorers))

    costs = scorer_costs(dataset, build_scorers(default_config(root)))
    print("measured ms/img on one core (declared): "
          + ", ".join(f"{s.name} {costs[s.name]:.1f} ({s.cost_ms:g})" for s in scorers if s.name in costs))
    photos = photograph_costs()
    print("technical measures on real photographs, ms/img on one core: "
          f"{photos['measures_0.3mp']:.1f} at 0.3 MP (decoding the JPEG {photos['decode_0.3mp']:.1f}), "
          f"{photos['measures_6mp']:.1f} at 6 MP (decoding {photos['decode_6mp']:.1f})")
    decode = decode_rate(dataset)
    print(f"(a) decode only: {decode:.1f} img/s")
    unordered = unordered_rate(dataset, scorers)
    print(f"(b) every scorer on every image, no ordering: {unordered:.1f} img/s")
    run = cascade_run(root)
    cascade = run["rows"] / run["seconds"]
    print(f"cascade: {cascade:.1f} img/s ({run['rows']} rows in {run['seconds']:.1f} s)")
    funnel = dict((name, count) for name, count in run["funnel"])
    print("funnel: " + " → ".join(f"{name} {count}" for name, count in run["funnel"]))

    # a model scorer runs on exactly the rows alive after the scorer before it, never on a reject
    names = [name for name, _ in run["funnel"]]
    reached = {m: funnel[names[names.index(m) - 1]] for m in MODEL_SCORERS if m in funnel}
    for m in MODEL_SCORERS:
        print(f"{m}: scored {run['scored'][m]} rows, alive when it ran {reached.get(m)}")
    never_on_rejects = all(run["scored"][m] == reached.get(m) for m in MODEL_SCORERS)

    # What ordering can buy at these decisions: the models must still see every row the
    # per-row cheap scorers keep (what survives, plus what the models themselves reject), so
    # even free cheap scorers leave the models' share of the work on those rows
    reach = max(reached.values()) / run["rows"]  # the first model to run sees the most rows
    decode_ms = WORKERS * 1000 / decode
    model_ms = sum(costs[m] for m in MODEL_SCORERS if m in costs)
    ceiling = (decode_ms + sum(costs.values())) / (decode_ms + reach * model_ms)
    print(f"the models scored {reach:.1%} of the rows; with every cheap scorer free and the same "
          f"decisions, the speed-up could reach at most {ceiling:.2f}x")

    half = cascade_run(ingested(small))
    print(f"peak memory: {small} samples: main {half['rss_mb']:.0f} MB, worker {half['worker_rss_mb']:.0f} MB; "
          f"{large} samples: main {run['rss_mb']:.0f} MB, worker {run['worker_rss_mb']:.0f} MB")
    print(f"speed vs decode-only: {cascade / decode:.2f}x of the ceiling")
    result("cascade_speedup", cascade / unordered, ">=", 3.0)
    # the measures work on bounded copies (all but the area-average to them): at 20 times the
    # pixels they cost about what decoding the image does
    result("technical_measures_vs_decode_6mp", photos["measures_6mp"] / photos["decode_6mp"], "<=", 1.5)
    result("model_scorers_on_rejected_rows", 0.0 if never_on_rejects else 1.0, "<=", 0.0)
    # peak RSS at twice the pool over peak RSS at the pool: the main process holds manifest rows
    # only; a worker holds at most a few batches of decoded images and the models
    result("main_peak_memory_growth", run["rss_mb"] / half["rss_mb"], "<=", 1.2)
    result("worker_peak_memory_growth", run["worker_rss_mb"] / half["worker_rss_mb"], "<=", 1.2)


if __name__ == "__main__":
    run_benchmark(main)
