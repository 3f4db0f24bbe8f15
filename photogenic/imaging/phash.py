"""Near-duplicate detection with perceptual hashes, a banded LSH index and clustering.

A web pool holds the same picture many times: reposted, re-encoded, slightly cropped or
re-brightened. Quality-tuning on 2,000 images cannot afford to spend any of them twice, so the
auto-filter groups copies into clusters and keeps the best-scoring member of each.

- ``phash`` turns an image into a 64-bit DCT perceptual hash; copies land a few bits apart.
- ``find_near_duplicates`` finds every pair of hashes within ``max_distance`` bits without
  comparing all n² pairs: the 64 bits are cut into ``bands`` bands, only hashes sharing an
  identical band are compared (pigeonhole makes this exact, see there), and memory stays O(n).
- clusters are the connected components of the verified pairs (union-find); one member per
  cluster is kept.

Calibration (``max_distance``) on the synthetic sample pool (n=800, seed=2: 788 decodable
images, 32 near and 12 exact planted copies). Distances are always even (the median split sets
exactly 32 bits), so 6 and 7 behave alike. Exact copies are 0 bits apart; near copies (JPEG
round trip, gain 0.92-1.08, crop up to 5% a side, maybe a downscale) spread over 0-14 bits,
cropping doing most of the damage. Unrelated renders of one scene template that differ only in
subject colour, which a grey hash cannot see, sit as close as 2 bits:

    max_distance             4     6     8    10    12
    near copies joined      34%   72%   88%   94%   97%
    exact copies joined    100%  100%  100%  100%  100%
    clusters with strangers   8    18    37    45    56
    unrelated items merged    8    27    65   143   251

The default, 6, joins every exact copy and 72% of near copies while 27 of 788 images (3%) end
up with a stranger; 8 would join 5 more copies at the cost of 38 more unrelated images. A false
merge silently drops a distinct image, whereas a missed copy can still be caught by the human
curators downstream, so the default leans to precision. It also keeps the index cheap (7
bands of 9-10 bits; see ``find_near_duplicates``). Real photos have no colour-swapped templates,
so a pool of them can afford a higher threshold: measure before raising it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy.fft import dctn

#: Hashes at most this many bits apart are duplicates; chosen on the sample pool (module docstring).
DEFAULT_MAX_DISTANCE = 6

#: A bucket whose members hold more distinct hashes than this is counted as oversized: it is
#: still verified exactly, but its cost grows with the square of its size, so a large count
#: means the data has a hot spot in hash space (or ``bands`` is too fine for ``n``).
OVERSIZED_BUCKET = 2048

_HASH_SIDE = 32  # the image is reduced to 32×32 before the DCT
_LOW = 8  # the 8×8 lowest frequencies give the 64 bits
_BITS = 64


# -- hashing ------------------------------------------------------------------------------------


def phash(image: Image.Image) -> int:
    """The 64-bit perceptual hash of ``image`` (pass ``decode_rgb`` output; any PIL mode works).

    Recipe: grey, area-average down (or up) to 32×32, 2-D orthonormal DCT-II, keep the top-left
    8×8 lowest frequencies *including* DC, bit = coefficient > median of those 64. Bit 63 (the
    most significant) is DC, then row-major order. The median makes the hash invariant to a
    brightness gain (it scales every coefficient alike) and the low frequencies make it ignore
    JPEG noise and small crops. DC is the block's largest coefficient in any non-black image, so
    its bit is always 1: the hash carries 63 informative bits.

    Degenerate images: the image is squashed to 32×32 whatever its aspect ratio, so a 1×1 or
    1×4000 image hashes without error. A flat (single-colour) image has no AC energy; those
    coefficients are snapped to zero so that float noise cannot pick bits at random, and every
    flat image hashes to ``1 << 63`` (pure black to 0, one bit away): all blank images form one
    duplicate cluster, as they should.
    """
    return int(phash_many([image])[0])


def phash_many(images: Iterable[Image.Image]) -> np.ndarray:
    """``phash`` of each image, as a uint64 array; the DCTs run as one batched call."""
    grids = [_grey_grid(image) for image in images]
    if not grids:
        return np.zeros(0, dtype=np.uint64)
    coefficients = dctn(np.stack(grids), axes=(1, 2), norm="ortho")[:, :_LOW, :_LOW]
    low = coefficients.reshape(len(grids), _LOW * _LOW)
    # AC terms of a flat image come out as ±1e-13, not 0; snap such noise to exactly 0
    low = np.where(np.abs(low) < 1e-6, 0.0, low)
    bits = low > np.median(low, axis=1, keepdims=True)
    return np.packbits(bits, axis=1).view(">u8").ravel().astype(np.uint64)


def chroma_phash_many(images: Iterable[Image.Image]) -> np.ndarray:
    """``phash`` of each image's colour layout: its CIELAB a* and b* planes side by side, blind
    to brightness. The grey hash cannot tell a copy from a render that differs only in the
    subject's colour; requiring both hashes to be close lets the grey threshold be wider (see
    ``photogenic.filtering.scorers.dedup`` for the calibration)."""
    return phash_many([_chroma_planes(image) for image in images])


def _chroma_planes(image: Image.Image) -> Image.Image:
    lab = np.asarray(image.convert("RGB").convert("LAB"))
    return Image.fromarray(np.concatenate([lab[..., 1], lab[..., 2]], axis=1), "L")


def _grey_grid(image: Image.Image) -> np.ndarray:
    grey = image if image.mode == "L" else image.convert("L")
    small = grey.resize((_HASH_SIDE, _HASH_SIDE), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float64)


def hamming(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    """Bitwise Hamming distance between uint64 hashes, elementwise with numpy broadcasting."""
    x = np.bitwise_xor(np.asarray(a, dtype=np.uint64), np.asarray(b, dtype=np.uint64))
    return np.bitwise_count(x).astype(np.int64)


# -- clustering ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DuplicateClusters:
    """The outcome of ``find_near_duplicates``, one entry per input hash.

    ``cluster_id[i]``: the smallest index in i's cluster (i itself when i has no duplicate), so
    ids do not depend on processing order. ``keep[i]``: True for exactly one member per cluster.
    ``pairs_checked``: candidate pairs whose exact distance was computed (the work done; brute
    force would be n(n-1)/2). ``oversized_buckets``: buckets with more than ``OVERSIZED_BUCKET``
    distinct hashes (verified exactly all the same, see there).
    """

    cluster_id: np.ndarray
    keep: np.ndarray
    pairs_checked: int
    oversized_buckets: int

    @property
    def n_clusters(self) -> int:
        return int(np.count_nonzero(self.keep))

    @property
    def n_duplicates(self) -> int:
        """Items that are not kept: what dedup removes."""
        return int(self.keep.size - self.n_clusters)


def find_near_duplicates(
    hashes: np.ndarray,
    scores: np.ndarray | None = None,
    max_distance: int = DEFAULT_MAX_DISTANCE,
    bands: int | None = None,
) -> DuplicateClusters:
    """Cluster ``hashes`` whose Hamming distance is at most ``max_distance``, transitively, and
    keep one member per cluster: the highest ``score`` (ties, and ``scores=None``: lowest index).

    Exactness: the 64 bits are cut into ``bands`` contiguous bands (widths differ by at most one
    bit when ``bands`` does not divide 64), and only hashes with an identical value in some band
    are compared. Two hashes at most ``max_distance`` bits apart differ in at most that many
    bands, so when ``bands > max_distance`` they agree on at least one band (pigeonhole): the
    verified pairs are exactly the brute-force pairs. ``bands <= max_distance`` would silently
    lose pairs, so it is refused. ``bands`` defaults to ``max_distance + 1``: the widest bands
    that keep the guarantee, hence the fewest candidate pairs.

    Cost: hashes that are bit-identical are merged first (5,000 copies of one blank image cost
    nothing). Each band is then sorted, and a bucket of m distinct hashes costs m(m-1)/2
    popcounts, computed in vectorised blocks of at most n pairs; memory stays O(n) whatever the
    bucket sizes, and no pair is ever skipped (see ``OVERSIZED_BUCKET``).
    """
    hashes = _validated_hashes(hashes)
    scores = _validated_scores(scores, hashes.size)
    bands = _validated_bands(max_distance, bands)
    unique, inverse = np.unique(hashes, return_inverse=True)
    forest = _UnionFind(unique.size)
    checked = oversized = 0
    for low, high in _band_edges(bands):
        band_checked, band_oversized = _link_band(unique, low, high, max_distance, forest)
        checked += band_checked
        oversized += band_oversized
    cluster_id = _smallest_member(forest.roots()[inverse.ravel()])
    return DuplicateClusters(cluster_id, _keepers(cluster_id, scores), checked, oversized)


def _validated_hashes(hashes: np.ndarray) -> np.ndarray:
    array = np.asarray(hashes)
    if array.ndim != 1:
        raise ValueError(f"hashes must be a 1-D array of 64-bit hashes, got shape {array.shape}")
    if array.size and array.dtype != np.uint64:
        raise ValueError(f"hashes must have dtype uint64 (as phash_many returns), got {array.dtype}")
    return array.astype(np.uint64, copy=False)


def _validated_scores(scores: np.ndarray | None, n: int) -> np.ndarray:
    if scores is None:
        return np.zeros(n)
    array = np.asarray(scores, dtype=np.float64)
    if array.shape != (n,):
        raise ValueError(f"scores must have one value per hash, shape ({n},), got {array.shape}")
    if np.isnan(array).any():
        raise ValueError("scores contain NaN: fill unscored items (e.g. with -inf) before deduplicating")
    return array


def _validated_bands(max_distance: int, bands: int | None) -> int:
    if not 0 <= max_distance < _BITS:
        raise ValueError(f"max_distance must be in 0..{_BITS - 1}, got {max_distance}")
    bands = max_distance + 1 if bands is None else bands
    if not max_distance < bands <= _BITS:
        raise ValueError(
            f"bands must be in {max_distance + 1}..{_BITS} for max_distance={max_distance}, got {bands}:"
            " with bands <= max_distance, pairs within the threshold can share no band and be missed"
        )
    return bands


def _band_edges(bands: int) -> list[tuple[int, int]]:
    """Bit ranges [low, high) of each band, as even as possible."""
    edges = [band * _BITS // bands for band in range(bands + 1)]
    return list(zip(edges[:-1], edges[1:]))


def _link_band(
    unique: np.ndarray, low: int, high: int, max_distance: int, forest: _UnionFind
) -> tuple[int, int]:
    """Verify every pair of ``unique`` hashes sharing bits [low, high); union those within
    ``max_distance``. Returns (pairs checked, oversized buckets).

    After sorting by band value, each bucket is a contiguous run, so comparing every element
    with the one ``offset`` places later, for offset = 1, 2, …, visits each within-bucket pair
    once with whole-array numpy operations. Buckets smaller than ``offset + 1`` are dropped as
    they finish (whenever that halves the working set), so a few large buckets don't make
    every step pay for all n.
    """
    mask = np.uint64((1 << (high - low)) - 1)
    values = (unique >> np.uint64(low)) & mask
    order = np.argsort(values, kind="stable")
    ids, run_left, run_size = order, *_runs(values[order])
    oversized = int(np.count_nonzero(run_size[run_left == run_size] > OVERSIZED_BUCKET))
    hashes = unique[order]
    checked, offset = 0, 1
    while hashes.size > offset:
        valid = run_left[:-offset] > offset  # partner at +offset is in the same bucket
        close = valid & (hamming(hashes[:-offset], hashes[offset:]) <= max_distance)
        checked += int(np.count_nonzero(valid))
        left = np.flatnonzero(close)
        forest.union(ids[left], ids[left + offset])
        offset += 1
        alive = run_size > offset
        if np.count_nonzero(alive) * 2 < alive.size:
            ids, run_left, run_size, hashes = ids[alive], run_left[alive], run_size[alive], hashes[alive]
    return checked, oversized


def _runs(sorted_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each element of a sorted array: elements left in its run of equal values (itself
    included), and the run's size."""
    n = sorted_values.size
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], n]
    sizes = ends - starts
    return np.repeat(ends, sizes) - np.arange(n), np.repeat(sizes, sizes)


class _UnionFind:
    """Disjoint sets over 0..n-1 with vectorised unions; every root is its set's smallest id."""

    def __init__(self, n: int):
        self.parent = np.arange(n)

    def find(self, items: np.ndarray) -> np.ndarray:
        roots = self.parent[items]
        while True:
            up = self.parent[roots]
            if np.array_equal(up, roots):
                break
            self.parent[roots] = self.parent[up]  # path halving keeps later finds short
            roots = up
        self.parent[items] = roots
        return roots

    def union(self, a: np.ndarray, b: np.ndarray) -> None:
        """Merge the sets of each pair (a[i], b[i]). Hooking the larger root under the smaller
        for all pairs at once can leave some pairs apart (one root claimed by two pairs), so
        repeat on those; every round removes at least one root, and usually all of them."""
        while a.size:
            root_a, root_b = self.find(a), self.find(b)
            apart = root_a != root_b
            a, b, root_a, root_b = a[apart], b[apart], root_a[apart], root_b[apart]
            np.minimum.at(self.parent, np.maximum(root_a, root_b), np.minimum(root_a, root_b))

    def roots(self) -> np.ndarray:
        return self.find(np.arange(self.parent.size))


def _smallest_member(labels: np.ndarray) -> np.ndarray:
    """Relabel clusters by their smallest item index."""
    smallest = np.full(labels.size, labels.size, dtype=np.int64)
    np.minimum.at(smallest, labels, np.arange(labels.size))
    return smallest[labels]


def keep_best(cluster_id: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """True for the best-scoring member of each cluster (``cluster_id`` as
    ``DuplicateClusters`` gives it), the lowest index among equals: for callers that combine
    clusterings."""
    return _keepers(np.asarray(cluster_id, dtype=np.int64), np.asarray(scores, dtype=float))


def _keepers(cluster_id: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """True for the best-scoring member of each cluster, the lowest index among equals."""
    order = np.lexsort((np.arange(cluster_id.size), -scores, cluster_id))
    first = np.diff(cluster_id[order], prepend=-1) != 0
    keep = np.zeros(cluster_id.size, dtype=bool)
    keep[order[first]] = True
    return keep
