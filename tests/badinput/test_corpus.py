"""The bad-input corpus (tests/badinput/corpus.py) through ingest -> auto-filter -> curation import:
every input ends with exactly one outcome (kept, rejected with a reason, or quarantined with a
reason code) that the stage's counts add up to; no exception escapes; nothing is written outside
the data root; no connection is attempted."""

from __future__ import annotations

import json
import os
import socket
import sys
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from photogenic.config import config_from_dict, load_config
from photogenic.curation.importer import import_stage
from photogenic.curation.layout import CurationLayout
from photogenic.dataset.store import Dataset
from photogenic.errors import ConfigError, DataError
from photogenic.filtering.cascade import REASON, REJECTED_BY
from photogenic.stages.auto_filter import REJECTED, auto_filter
from photogenic.stages.ingest import ingest
from photogenic.stages.runner import run_stage
from tests.badinput import corpus
from tests.badinput.corpus import ANY_INGEST, CONFIG_CASES, DUPLICATE, KEPT

#: audit events that change the file system: which of their arguments are paths, each with the
#: argument holding the directory descriptor it is relative to, if any (shutil.rmtree removes a
#: tree's files by name relative to the folder's descriptor)
_WRITES = {"os.rename": ((0, 2), (1, 3)), "os.replace": ((0, 2), (1, 3)), "os.remove": ((0, 1),),
           "os.unlink": ((0, 1),), "os.rmdir": ((0, 1),), "os.mkdir": ((0, 2),), "os.symlink": ((1, 2),),
           "os.link": ((1, 3),), "os.truncate": ((0, None),), "os.chmod": ((0, 2),),
           "shutil.rmtree": ((0, 1),), "shutil.copyfile": ((1, None),), "shutil.move": ((1, None),)}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


class _Guard:
    """Records every file-system change outside ``allowed`` (through Python's audit hooks, which
    cannot be removed: the hook stays, idle, once the test is over)."""

    active: _Guard | None = None
    installed = False

    def __init__(self, allowed: Path):
        self.allowed = os.path.realpath(allowed)
        self.outside: list[tuple[str, str]] = []

    def __enter__(self):
        if not _Guard.installed:
            sys.addaudithook(_Guard._hook)
            _Guard.installed = True
        _Guard.active = self
        return self

    def __exit__(self, *exc):
        _Guard.active = None

    @staticmethod
    def _hook(event, args):
        guard = _Guard.active
        if guard is None:
            return
        paths = []
        if event == "open":
            path, mode, flags = args
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (flags or 0) & _WRITE_FLAGS
            if writing:
                paths.append((path, None))
        elif event in _WRITES:
            paths.extend((args[i], args[fd] if fd is not None and fd < len(args) else None)
                         for i, fd in _WRITES[event] if i < len(args))
        for path, dir_fd in paths:
            if isinstance(path, int) or path is None:
                continue
            path = os.fsdecode(path)
            if isinstance(dir_fd, int) and dir_fd >= 0 and not os.path.isabs(path):
                path = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), path)
            if "__pycache__" in path:  # the interpreter's own bytecode cache
                continue
            real = os.path.realpath(path)
            if real != guard.allowed and not real.startswith(guard.allowed + os.sep):
                guard.outside.append((event, real))


@pytest.fixture
def no_network(monkeypatch):
    attempts: list[str] = []

    def refuse(what):
        def call(*args, **kwargs):
            attempts.append(f"{what}{args[1:] if what == 'connect' else args}")
            raise OSError(f"the bad-input corpus may not use the network ({what})")
        return call

    monkeypatch.setattr(socket.socket, "connect", refuse("connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", refuse("connect"))
    monkeypatch.setattr(socket, "create_connection", refuse("create_connection"))
    monkeypatch.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))
    return attempts


def _config(root: Path, inputs_root: Path):
    tree = load_config(None, [
        f"data.root={root}", "ingest.workers=0", f"ingest.max_image_bytes={corpus.MAX_IMAGE_BYTES}",
        "filter.workers=0", "filter.ocr.enabled=false", "filter.nsfw.enabled=false",
        "curation.stage1.annotators=[ann-a, ann-b]", "curation.stage1.quota=5", "curation.simulate.enabled=false",
    ]).resolved()
    tree["ingest"]["sources"] = corpus.sources(inputs_root)
    return config_from_dict(tree)


def test_every_bad_input_gets_exactly_one_outcome(tmp_path, no_network):
    root = tmp_path / "data"
    inputs = corpus.build(root)
    config = _config(root, root)
    kinds: set[str] = {i.kind for i in inputs}

    with _Guard(root) as guard:
        # -- ingest: every sample of every source is a row, a source of a row, or a quarantine record
        ingest(config, progress=False)
        dataset = Dataset(str(root / "datasets" / "ingested"))
        manifest = dataset.read_manifest().to_pylist()
        quarantine = dataset.read_quarantine().to_pylist()
        card = dataset.read_card()
        records = Counter([s for row in manifest for s in row["sources"]] + [q["source"] for q in quarantine])
        assert [s for s, n in records.items() if n > 1] == [], "an input with more than one outcome"
        assert set(records) == {i.source for i in inputs}, "inputs without an outcome, or records of no input"
        assert card["rows"] + card["duplicates_collapsed"] + card["quarantined"] == len(inputs)
        rows = {s: row for row in manifest for s in row["sources"]}
        quarantined = {q["source"]: q for q in quarantine}
        for item in inputs:
            if item.ingest in (KEPT, DUPLICATE):
                assert item.source in rows, f"{item.kind}: expected a row, got {quarantined[item.source]}"
                first = rows[item.source]["source"] == item.source
                assert first == (item.ingest == KEPT), f"{item.kind}: {item.ingest} expected"
                for column, value in item.row.items():
                    assert rows[item.source][column] == value, f"{item.kind}: {column}"
            elif item.ingest != ANY_INGEST:
                assert item.source in quarantined, f"{item.kind}: expected quarantine {item.ingest}, got a row"
                record = quarantined[item.source]
                assert record["reason_code"] in item.ingest, f"{item.kind}: {record}"
                assert record["reason"], f"{item.kind}: a quarantine record without a reason"
        assert card["quarantine_reasons"] == dict(sorted(Counter(q["reason_code"] for q in quarantine).items()))

        # -- auto-filter: every ingested row is a candidate or rejected with its reason
        auto_filter(config, progress=False)
        candidates = Dataset(str(root / "datasets" / "candidates"))
        kept = candidates.read_manifest(["sample_id"])["sample_id"].to_pylist()
        rejected = pq.read_table(root / "datasets" / "candidates" / REJECTED).to_pylist()
        assert sorted(kept + [r["sample_id"] for r in rejected]) == sorted(r["sample_id"] for r in manifest)
        assert all(r[REJECTED_BY] and r[REASON] for r in rejected)
        filter_card = candidates.read_card()
        assert filter_card["rows"] + filter_card["rejected"] == len(manifest)
        by_id = {r["sample_id"]: r for r in rejected}
        for item in inputs:
            if item.filtered is not None:
                sample_id = rows[item.source]["sample_id"]
                assert by_id.get(sample_id, {}).get(REJECTED_BY) == item.filtered, item.kind
        assert len(kept) >= 6, "too few candidates left to annotate"

        # -- curation import: every annotation row is a submission, a bad row with its reason, or
        # unanswered / cancelled; a file that is no export at all is refused with one message
        cases = corpus.annotation_cases(tmp_path / "data" / "exports", sorted(kept))
        kinds |= {c.kind for c in cases}
        layout = CurationLayout.of(config)
        for case in cases:
            if case.rows is None:
                with pytest.raises(DataError, match=Path(case.file).name):
                    import_stage(config, 1, files=[case.file], skip_bad=True)
                continue
            result = import_stage(config, 1, files=[case.file], skip_bad=True)
            counts = json.loads(Path(layout.agreement(1)).read_text())["counts"]
            assert counts == result.counts
            outcomes = counts["submissions"] + counts["quarantined"] + counts["unanswered"] + counts["cancelled"]
            assert outcomes == case.rows, f"{case.kind}: {counts}"
            assert {b.reason_code for b in result.quarantine} == case.bad, case.kind
            stored = pq.read_table(layout.quarantine(1)).to_pylist()
            assert len(stored) == counts["quarantined"] and all(q["reason"] for q in stored), case.kind

        # -- configurations: refused with a message naming the key, before anything runs
        for kind, overrides, key in CONFIG_CASES:
            kinds.add(kind)
            with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
                load_config(None, [f"data.root={root}", *overrides])
        kinds.add("config_source_outside_the_data")
        escaping = load_config(None, [f"data.root={root}", "ingest.sources.0.uri=../../etc/*.tar"])
        with pytest.raises(DataError, match="leaves the data folder"):
            run_stage("ingest", escaping, progress=False)
        kinds.add("config_stage_writes_another_stages_dataset")
        with pytest.raises(ConfigError, match="package.output"):
            run_stage("package", load_config(None, [f"data.root={root}", "package.output=ingested"]), progress=False)

    assert guard.outside == [], "written outside the data root"
    assert no_network == [], "a connection was attempted"
    assert len(kinds) >= 40, len(kinds)
