"""The judges that learn: their networks, kept by content hash, and prepared together.

A ``Learned`` is the weights one or more judges score with (the rater panel's members; the kind
checker, which the ``subject_kind`` and ``text_match`` judges share). Its networks come from
this process's memory, else from ``<cache>/<name>/<key>/`` (``member-N.safetensors`` and
``card.json``, written last: it marks the folder complete), else they are fitted. The key hashes
what the weights depend on (the learner's settings and seeds, the pool generator's version, the
source of the modules that make them, torch's version), so they are fitted once per machine.

``prepare`` draws the pools of every learner that is missing, then fits all their networks, on
the data plane (``fit.run_all``, ``fit.fit_all``): the panel's members and the kind checker share
the workers instead of waiting for one another.
An evaluation prepares its judges before it samples, so no judge trains in the middle of it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_weights
from safetensors.torch import save as save_weights

from photogenic.dataplane.session import ray_session
from photogenic.dataset.atomic import filesystem, write_bytes, write_text
from photogenic.evaluation.judges.sample_world import fit as fitting
from photogenic.paths import join
from photogenic.samplepool import GENERATOR_VERSION

log = logging.getLogger(__name__)

CARD = "card.json"
HERE = Path(__file__).resolve().parent

#: (cache folder, key) -> (networks, card): what this process has fitted or read
_MEMORY: dict[tuple[str | None, str], tuple[list[torch.nn.Module], dict[str, Any]]] = {}


class Learned:
    """Subclasses say what they are (``name``, ``outputs``, ``sources``), what their weights
    depend on (``facts``), how to fit them (``jobs``) and what to record after (``measure``)."""

    #: its folder under the cache
    name: str = ""
    #: the network's outputs
    outputs: int = 0
    #: the modules (in this package) whose source decides the weights
    sources: tuple[str, ...] = ("fit.py",)

    def __init__(self, cache: str | None, workers: int = 0):
        #: ``workers``: how this learner is fitted when it is first used without ``prepare``
        self.cache, self.workers = cache, workers

    def facts(self) -> dict[str, Any]:
        raise NotImplementedError

    def renders(self) -> dict[str, tuple[Callable[..., Any], tuple]]:
        """What to draw before fitting, by name: ``(function, args)``, drawn on the workers."""
        return {}

    def jobs(self, drawn: dict[str, Any]) -> list[fitting.FitJob]:
        """The networks to fit (each job's name is the member's), from what ``renders`` drew."""
        raise NotImplementedError

    def measure(self, nets: list[torch.nn.Module], drawn: dict[str, Any]) -> dict[str, Any]:
        """The card's facts about freshly fitted networks (their validity, say)."""
        return {}

    @cached_property
    def key(self) -> str:
        code = hashlib.sha256(b"".join((HERE / name).read_bytes() for name in ("learned.py", *self.sources)))
        facts = {**self.facts(), "generator": GENERATOR_VERSION, "code": code.hexdigest(),
                 "torch": torch.__version__.split("+")[0]}
        return hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()[:20]

    @property
    def folder(self) -> str | None:
        return join(self.cache, self.name, self.key) if self.cache is not None else None

    def ready(self) -> bool:
        """In memory, or read into it from the cache."""
        memo = (self.cache, self.key)
        if memo in _MEMORY:
            return True
        if self.folder is None:
            return False
        fs, card_path = filesystem(join(self.folder, CARD))
        if not fs.exists(card_path):
            return False
        card = json.loads(fs.cat_file(card_path))
        nets = []
        for m in range(card["members"]):
            net = fitting.network(self.outputs)
            net.load_state_dict(load_weights(fs.cat_file(filesystem(join(self.folder, f"member-{m}.safetensors"))[1])))
            nets.append(net.eval())
        _MEMORY[memo] = (nets, card)
        return True

    @property
    def nets(self) -> list[torch.nn.Module]:
        prepare([self], self.workers)
        return _MEMORY[(self.cache, self.key)][0]

    @property
    def card(self) -> dict[str, Any]:
        prepare([self], self.workers)
        return _MEMORY[(self.cache, self.key)][1]

    def adopt(self, nets: list[torch.nn.Module], drawn: dict[str, Any], seconds: dict[str, float]) -> None:
        """Freshly fitted networks: measured, kept in memory and (with a cache) on disk."""
        started = time.perf_counter()
        card = {"name": self.name, "key": self.key, "members": len(nets), **self.measure(nets, drawn),
                "torch": torch.__version__}
        seconds = {**seconds, "measure": time.perf_counter() - started}
        card["seconds"] = {**seconds, "total": sum(seconds.values())}
        if self.folder is not None:
            for m, net in enumerate(nets):
                write_bytes(join(self.folder, f"member-{m}.safetensors"),
                            save_weights({k: v.contiguous() for k, v in net.state_dict().items()}))
            write_text(join(self.folder, CARD), json.dumps(card, indent=2) + "\n")  # last: the folder is complete
        _MEMORY[(self.cache, self.key)] = (nets, card)


def prepare(learners: list[Learned], workers: int = 2, progress: bool = True) -> None:
    """Every learner ready: the missing ones' pictures drawn, then their networks fitted, all
    together, ``workers`` at a time (in one Ray session)."""
    missing: dict[tuple[str | None, str], Learned] = {}
    for learner in learners:
        if (learner.cache, learner.key) not in missing and not learner.ready():
            missing[(learner.cache, learner.key)] = learner
    if not missing:
        return
    for learner in missing.values():
        log.info("training the %s judge's networks (once per machine%s)", learner.name,
                 f", kept in {learner.folder}" if learner.folder else "")
    with ray_session() if workers else contextlib.nullcontext():
        started = time.perf_counter()
        wanted = [(learner, name, call) for learner in missing.values() for name, call in learner.renders().items()]
        pictures = fitting.run_all([call for _, _, call in wanted], workers, "draw judges' pools", progress)
        drawn: dict[int, dict[str, Any]] = {id(learner): {} for learner in missing.values()}
        for (learner, name, _), picture in zip(wanted, pictures):
            drawn[id(learner)][name] = picture
        rendered = time.perf_counter() - started
        planned = [(learner, learner.jobs(drawn[id(learner)])) for learner in missing.values()]
        started = time.perf_counter()
        nets = fitting.fit_all([job for _, jobs in planned for job in jobs], workers, progress=progress)
        fitted = time.perf_counter() - started
    for learner, jobs in planned:
        mine, nets = nets[:len(jobs)], nets[len(jobs):]
        # the wall times are shared by every learner drawn and fitted with it
        learner.adopt(mine, drawn[id(learner)], {"render_with_the_others": rendered, "fit_with_the_others": fitted})
