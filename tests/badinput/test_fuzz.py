"""Property-based fuzzing of the readers of untrusted input: the WebDataset tar reader and the
annotation importers (curation exports, human-rating files). Whatever the bytes, each input is
accepted (samples, submissions, bad rows) or refused with the project's error type; never another
exception, never a hang.

Examples are drawn deterministically (``derandomize``), so that a failure reproduces in CI; raise
``max_examples`` locally to search further."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from photogenic.curation.importer import import_stage
from photogenic.curation.submissions import read_export
from photogenic.errors import PhotogenicError
from photogenic.evaluation.human import _read_vote_file
from photogenic.sources.readers import IMAGE_EXTENSIONS, RawSample, ReadLimits, iter_tar
from tests.support.curation_world import make_world, sample_id

FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
#: the tar reader is cheap to run: it gets more examples
FUZZ_TAR = settings(FUZZ, max_examples=600)
LIMITS = ReadLimits(max_image_bytes=4096, max_caption_bytes=512, max_meta_bytes=512)
#: every reason code the tar reader may give a sample
TAR_CODES = {"unsafe_member", "split_key", "duplicate_member", "multiple_images", "file_too_large", "missing_image",
             "download_failed", "bad_metadata", "unreadable_shard"}

_names = st.sampled_from(["a", "b", "dir/a", "./a", "/abs/a", "../a", "a.b", "ключ", "a\udcff", "", "."])
_exts = st.sampled_from([*IMAGE_EXTENSIONS[:3], "txt", "json", "bin", "JPG", "tar.gz", ""])
_types = st.sampled_from([tarfile.REGTYPE, tarfile.REGTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE,
                          tarfile.DIRTYPE, tarfile.FIFOTYPE, b"Z"])
_member = st.tuples(_names, _exts, _types, st.binary(max_size=600))


def _tar(members, fmt) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        for name, ext, kind, data in members:
            info = tarfile.TarInfo(f"{name}.{ext}" if ext else name or "x")
            info.type = kind
            if kind == tarfile.REGTYPE:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                info.linkname = "a.jpg"
                tar.addfile(info)
    return buffer.getvalue()


def _read_all(path: Path) -> list[RawSample]:
    try:
        samples = list(iter_tar(str(path), path.name, LIMITS))
    except PhotogenicError:
        return []
    for sample in samples:
        assert isinstance(sample, RawSample)
        if sample.problem is not None:
            assert sample.problem[0] in TAR_CODES and sample.problem[1] and sample.image is None
        else:
            assert sample.image is not None and len(sample.image) <= LIMITS.max_image_bytes
        assert sample.caption is None or len(sample.caption) <= LIMITS.max_caption_bytes
    assert len({s.source for s in samples}) == len(samples)  # one record per occurrence
    return samples


@FUZZ_TAR
@given(data=st.binary(max_size=3000))
def test_any_bytes_as_a_shard(tmp_path, data):
    path = tmp_path / "shard.tar"
    path.write_bytes(data)
    _read_all(path)


@FUZZ_TAR
@given(members=st.lists(_member, max_size=8), fmt=st.sampled_from([tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT,
                                                                    tarfile.PAX_FORMAT]),
       cut=st.one_of(st.none(), st.integers(min_value=0, max_value=20_000)), compress=st.booleans(),
       flips=st.lists(st.tuples(st.integers(min_value=0, max_value=20_000), st.integers(1, 255)), max_size=3))
def test_structured_shards_cut_and_damaged(tmp_path, members, fmt, cut, compress, flips):
    try:
        data = bytearray(_tar(members, fmt))
    except (ValueError, UnicodeError):  # a name the tar format itself cannot hold
        return
    for position, value in flips:
        if position < len(data):
            data[position] ^= value
    data = bytes(data)
    if compress:
        data = gzip.compress(data)
    if cut is not None:
        data = data[:cut]
    path = tmp_path / "shard.tar"
    path.write_bytes(data)
    _read_all(path)


# -- annotation exports ---------------------------------------------------------------------------

_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                  max_size=4),
                     max_leaves=20)
_controls = st.sampled_from(["s1_verdict", "s1_criteria", "s2_verdict", "s2_composition", "s2_caption", "s1_nope", ""])


@st.composite
def _label_studio_export(draw):
    """Tasks shaped like a Label Studio export, with any value in any slot."""
    def maybe(strategy):
        return draw(st.one_of(strategy, _json))

    tasks = []
    for index in range(draw(st.integers(0, 4))):
        result = [{"from_name": maybe(_controls), "to_name": "image", "type": "choices",
                   "value": maybe(st.fixed_dictionaries({}, optional={
                       "choices": st.lists(st.sampled_from(["keep", "reject", "composition", "lighting", "yes"]),
                                           max_size=3),
                       "rating": st.integers(-2, 7), "text": st.lists(st.text(max_size=10), max_size=2)}))}
                  for _ in range(draw(st.integers(0, 3)))]
        annotation = {"completed_by": maybe(st.integers(1, 3)), "created_at": maybe(st.just("2026-01-05T10:00:00Z")),
                      "result": maybe(st.just(result)), "was_cancelled": maybe(st.booleans())}
        task = {"id": index, "data": maybe(st.fixed_dictionaries({"sample_id": st.sampled_from(
            [sample_id(0), sample_id(3), sample_id(11), "nope"]), "stage": st.sampled_from([1, 2, 7, "1"])})),
                "annotations": maybe(st.lists(st.just(annotation), max_size=2))}
        tasks.append(task if draw(st.booleans()) else maybe(st.just(task)))
    return tasks


def _import(world, path: Path) -> None:
    """Parse, check and import ``path`` as its own stage: a result, or the project's error."""
    try:
        parsed = read_export(str(path))
        result = import_stage(world, parsed.stage, files=[str(path)], skip_bad=True)
    except PhotogenicError:
        return
    rows = sum(len(p.submissions) + len(p.bad) for p in [parsed]) + parsed.unanswered + parsed.cancelled
    counts = result.counts
    assert counts["files"] == 1 and counts["quarantined"] == len(result.quarantine)
    # every parsed row ends as a submission, a bad row, a repeat of an identical submission, or no answer
    assert counts["submissions"] + counts["quarantined"] + counts["unanswered"] + counts["cancelled"] <= rows


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_world(tmp_path_factory.mktemp("fuzz") / "data")


@FUZZ
@given(tasks=_label_studio_export())
@example(tasks=[{"id": 0, "data": {"sample_id": sample_id(0), "stage": 1},  # found by a longer search
                 "annotations": [{"completed_by": 1, "created_at": "2026-01-05T10:00:00Z", "result": True}]}])
def test_label_studio_exports_of_any_shape(world, tmp_path, tasks):
    path = tmp_path / "export.json"
    path.write_text(json.dumps(tasks))
    _import(world, path)


@FUZZ
@given(data=st.binary(max_size=2000), suffix=st.sampled_from([".json", ".csv"]))
def test_any_bytes_as_an_annotation_file(world, tmp_path, data, suffix):
    path = tmp_path / f"export{suffix}"
    path.write_bytes(data)
    _import(world, path)


_cells = st.one_of(st.sampled_from(["keep", "reject", "yes", "no", "1", "²", "٣", "", "2026-01-05T10:00:00Z",
                                    sample_id(0), "ann-a", "x" * 50]), st.text(max_size=12))


@FUZZ
@given(rows=st.lists(st.lists(_cells, min_size=0, max_size=11), max_size=5),
       header=st.sampled_from([
           "sample_id,stage,annotator,submitted_at,verdict,composition,lighting,colour_contrast,subject_background",
           "sample_id,verdict", ""]))
def test_curation_csv_of_any_cells(world, tmp_path, rows, header):
    import csv

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if header:
        writer.writerow(header.split(","))
    writer.writerows(rows)
    path = tmp_path / "export.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8", errors="surrogatepass")
    _import(world, path)


@FUZZ
@given(content=st.one_of(_json.map(json.dumps), st.binary(max_size=500).map(lambda b: b.decode("latin-1"))),
       suffix=st.sampled_from([".json", ".csv"]))
def test_human_rating_files_of_any_shape(tmp_path, content, suffix):
    path = tmp_path / f"votes{suffix}"
    path.write_text(content, encoding="utf-8", errors="surrogatepass")
    try:
        votes = _read_vote_file(path, "export-1")
    except PhotogenicError:
        return
    assert all(set(v) == {"rater", "criterion", "pair_id", "choice"} for v in votes)
