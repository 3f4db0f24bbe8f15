"""Near-duplicate detection: hash invariances, LSH exactness against brute force, oversized
buckets, cluster keepers, and recall of the sample pool's planted copies."""

from __future__ import annotations

import collections
import io
import tarfile
import time

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image, ImageDraw

from photogenic.imaging.decode import UnusableImage, decode_rgb
from photogenic.imaging.phash import (
    DEFAULT_MAX_DISTANCE,
    OVERSIZED_BUCKET,
    find_near_duplicates,
    hamming,
    phash,
    phash_many,
)


def scene(seed: int) -> Image.Image:
    """A smooth colour field with a few discs: photo-like energy at low frequencies."""
    rng = np.random.default_rng(seed)
    field = rng.integers(0, 256, (5, 5, 3), dtype=np.uint8)
    image = Image.fromarray(field).resize((320, 240), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    for _ in range(3):
        x, y, r = int(rng.integers(0, 260)), int(rng.integers(0, 180)), int(rng.integers(30, 60))
        draw.ellipse((x, y, x + r, y + r), fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    return image


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def crop_back(image: Image.Image, per_side: float) -> Image.Image:
    w, h = image.size
    dx, dy = round(per_side * w), round(per_side * h)
    return image.crop((dx, dy, w - dx, h - dy)).resize(image.size, Image.Resampling.LANCZOS)


def brute_force_pairs(hashes: np.ndarray, max_distance: int) -> set[tuple[int, int]]:
    distances = hamming(hashes[:, None], hashes[None, :])
    i, j = np.nonzero(np.triu(distances <= max_distance, k=1))
    return set(zip(i.tolist(), j.tolist()))


def components(n: int, pairs: set[tuple[int, int]]) -> np.ndarray:
    """Reference clustering: smallest member id, by plain iterative union-find."""
    parent = list(range(n))

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = find(a), find(b)
        parent[max(ra, rb)] = min(ra, rb)
    return np.array([find(x) for x in range(n)])


def random_hashes_with_near_pairs(seed: int, n: int, planted: int, max_flips: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 2**64, n, dtype=np.uint64, endpoint=False)
    for copy, original in zip(rng.choice(n, planted, replace=False), rng.choice(n, planted)):
        flips = rng.choice(64, int(rng.integers(0, max_flips + 1)), replace=False)
        hashes[copy] = hashes[original] ^ np.uint64(sum(1 << int(bit) for bit in flips))
    return hashes


# -- hashing ------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_phash_survives_gain_reencoding_and_light_crop(seed):
    image = scene(seed)
    reference = phash(image)
    brighter = Image.eval(image, lambda v: min(255, round(v * 1.08)))
    for copy in (brighter, jpeg(image, 70), crop_back(image, 0.01)):
        assert hamming(reference, phash(copy)) <= DEFAULT_MAX_DISTANCE


@pytest.mark.parametrize("seed", range(6))
def test_five_percent_crop_stays_nearer_than_an_unrelated_image(seed):
    """pHash's low frequencies shift phase under cropping: a 5% crop (2.5% a side) moves the
    hash 2-10 bits on these scenes, sometimes past the default threshold, while an unrelated
    image is 26+ bits away."""
    image = scene(seed)
    reference = phash(image)
    assert hamming(reference, phash(crop_back(image, 0.025))) <= 12
    assert hamming(reference, phash(scene(seed + 100))) >= 20


def test_degenerate_images_hash_without_error():
    flat = [Image.new("RGB", (1, 1), (200, 10, 10)), Image.new("L", (7, 3), 90),
            Image.new("RGB", (1, 4000), (5, 5, 5)), Image.new("RGBA", (4000, 1), (0, 0, 255, 40))]
    assert [phash(image) for image in flat] == [1 << 63] * 4
    assert phash(Image.new("RGB", (16, 16))) == 0  # pure black: no DC either
    stripe = Image.fromarray(np.tile(np.arange(0, 250, 10, dtype=np.uint8), (2, 1)))  # 25×2
    assert 0 < phash(stripe) < 2**64
    assert phash_many([]).dtype == np.uint64 and phash_many([]).size == 0


def test_phash_many_matches_phash():
    images = [scene(seed) for seed in range(4)]
    hashes = phash_many(images)
    assert hashes.dtype == np.uint64
    assert hashes.tolist() == [phash(image) for image in images]


def test_hamming_broadcasts():
    a = np.array([0, 0b1011, 2**64 - 1], dtype=np.uint64)
    assert hamming(a, np.uint64(0)).tolist() == [0, 3, 64]
    assert hamming(a[:, None], a[None, :]).shape == (3, 3)


# -- index and clusters -------------------------------------------------------------------------


@pytest.mark.parametrize("max_distance", [3, DEFAULT_MAX_DISTANCE, 10])
def test_lsh_finds_exactly_the_brute_force_clusters(max_distance):
    hashes = random_hashes_with_near_pairs(seed=max_distance, n=2000, planted=300, max_flips=max_distance + 3)
    expected_pairs = brute_force_pairs(hashes, max_distance)
    result = find_near_duplicates(hashes, max_distance=max_distance)
    assert len(expected_pairs) > 100
    np.testing.assert_array_equal(result.cluster_id, components(hashes.size, expected_pairs))
    assert 0 < result.pairs_checked < hashes.size * (hashes.size - 1) // 2


def test_every_planted_pair_within_threshold_is_linked_with_uneven_bands():
    hashes = random_hashes_with_near_pairs(seed=7, n=1500, planted=200, max_flips=8)
    result = find_near_duplicates(hashes, max_distance=8, bands=9)  # bands of 7 and 8 bits
    for a, b in brute_force_pairs(hashes, 8):
        assert result.cluster_id[a] == result.cluster_id[b]


def test_identical_hashes_cost_nothing():
    hashes = np.concatenate([np.full(5000, 1 << 63, dtype=np.uint64),
                             random_hashes_with_near_pairs(seed=1, n=500, planted=0, max_flips=0)])
    start = time.perf_counter()
    result = find_near_duplicates(hashes)
    assert time.perf_counter() - start < 2.0  # generous; brute force on the bucket is 12.5M pairs
    assert (result.cluster_id[:5000] == 0).all()
    assert result.keep[:5000].sum() == 1 and result.keep[0]
    assert result.pairs_checked < 50_000


def test_oversized_bucket_is_counted_and_verified_exactly():
    rng = np.random.default_rng(3)
    hot = (rng.integers(0, 2**56, OVERSIZED_BUCKET + 500, dtype=np.uint64) << np.uint64(8))  # low band all 0
    hot[:50] = hot[50:100] ^ np.uint64(1 << 40)  # some genuine near pairs inside the bucket
    hashes = np.concatenate([hot, random_hashes_with_near_pairs(seed=4, n=1000, planted=50, max_flips=4)])
    result = find_near_duplicates(hashes, max_distance=7, bands=8)
    assert result.oversized_buckets >= 1
    np.testing.assert_array_equal(result.cluster_id, components(hashes.size, brute_force_pairs(hashes, 7)))


def test_keep_picks_best_score_then_lowest_id():
    base = np.uint64(0xF0F0_F0F0_0F0F_0F0F)
    far = ~base
    hashes = np.array([base, far, base ^ np.uint64(1), base ^ np.uint64(3), far, 12345], dtype=np.uint64)
    scores = np.array([0.1, 0.5, 0.9, 0.9, 0.5, -1.0])
    result = find_near_duplicates(hashes, scores)
    assert result.cluster_id.tolist() == [0, 1, 0, 0, 1, 5]
    assert result.keep.tolist() == [False, True, True, False, False, True]
    assert (result.n_clusters, result.n_duplicates) == (3, 3)
    assert find_near_duplicates(hashes).keep.tolist() == [True, True, False, False, False, True]


def test_exactly_one_keeper_per_cluster_on_random_data():
    hashes = random_hashes_with_near_pairs(seed=9, n=3000, planted=800, max_flips=4)
    scores = np.random.default_rng(9).normal(size=hashes.size)
    result = find_near_duplicates(hashes, scores)
    kept = collections.Counter(result.cluster_id[result.keep].tolist())
    assert set(kept) == set(result.cluster_id.tolist()) and set(kept.values()) == {1}
    for cluster in np.unique(result.cluster_id):
        members = np.flatnonzero(result.cluster_id == cluster)
        assert scores[members[result.keep[members]]][0] == scores[members].max()
        assert members.min() == cluster


@pytest.mark.parametrize("kwargs, message", [
    ({"max_distance": 8, "bands": 8}, "bands must be in 9..64"),
    ({"bands": 65}, "bands must be in"),
    ({"max_distance": -1}, "max_distance"),
    ({"scores": np.array([1.0, np.nan, 0.0])}, "NaN"),
    ({"scores": np.zeros(2)}, "one value per hash"),
])
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        find_near_duplicates(np.arange(3, dtype=np.uint64), **kwargs)


def test_bad_hashes_are_refused():
    with pytest.raises(ValueError, match="uint64"):
        find_near_duplicates(np.arange(3, dtype=np.float64))
    with pytest.raises(ValueError, match="1-D"):
        find_near_duplicates(np.zeros((2, 2), dtype=np.uint64))
    empty = find_near_duplicates(np.zeros(0, dtype=np.uint64))
    assert empty.cluster_id.size == 0 and empty.n_clusters == 0


# -- the sample pool ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pool_hashes(tmp_path_factory):
    """(keys, hashes, ground truth by key) of the decodable images of a small sample pool."""
    from photogenic.samplepool import generate_sample_pool

    root = tmp_path_factory.mktemp("pool")
    generate_sample_pool(root, n=300, seed=0, progress=False, workers=1)
    truth = {row["key"]: row for row in pq.read_table(root / "ground_truth.parquet").to_pylist()}
    keys, images = [], []
    with tarfile.open(root / "00000.tar") as tar:
        for member in tar.getmembers():
            if member.name.endswith(".jpg"):
                try:
                    images.append(decode_rgb(tar.extractfile(member).read()))
                except UnusableImage:  # the pool's corrupt and truncated samples
                    continue
                keys.append(member.name.removesuffix(".jpg"))
    return keys, phash_many(images), truth


def test_sample_pool_copies_join_their_originals(pool_hashes):
    """Calibrated on this very pool (seed 0): every exact copy, 5 of 12 near copies at the
    default threshold (the rest were cropped up to 5% a side and downscaled: 8-20 bits), and
    11 of 12 at 10 bits; false merges grow from 2 to 16 unrelated items."""
    keys, hashes, truth = pool_hashes
    index = {key: i for i, key in enumerate(keys)}
    copies = [(index[k], index[truth[k]["near_duplicate_of"]], "exact_duplicate" in truth[k]["defects"])
              for k in keys if truth[k]["near_duplicate_of"] in index]
    assert len(copies) == 16
    for max_distance, near_found, most_false in [(DEFAULT_MAX_DISTANCE, 5, 2), (10, 11, 16)]:
        cluster = find_near_duplicates(hashes, max_distance=max_distance).cluster_id
        joined = [(cluster[copy] == cluster[original], exact) for copy, original, exact in copies]
        assert all(ok for ok, exact in joined if exact)
        assert sum(ok for ok, exact in joined if not exact) >= near_found
        family = [truth[k]["near_duplicate_of"] or k for k in keys]
        assert _unrelated_items_merged(cluster, family) <= most_false


def _unrelated_items_merged(cluster: np.ndarray, family: list[str]) -> int:
    """Items in a cluster that do not belong to the cluster's largest family."""
    members = collections.defaultdict(list)
    for c, f in zip(cluster.tolist(), family):
        members[c].append(f)
    return sum(len(fs) - max(collections.Counter(fs).values()) for fs in members.values())
