"""The rater panel: five simulated raters of visual appeal that are not the auto-filter.

Emu's visual-appeal verdicts came from five people who judged with the curation criteria, the
caption hidden. The sample world knows those criteria: its hidden ground truth says which
pictures are photogenic and what is wrong with the others. The panel learns them from pixels,
the way LAION's aesthetic predictor learnt from people's ratings:

- **what it learns from**: a fresh pool of the world drawn with seeds nobody else draws
  (``samplepool.seeds.RATER_PANEL_TRAINING``), each picture labelled with the stage-2
  specialist's verdict as the ground truth decides it (``curation.simulate.truth_of``:
  photogenic means no image defect and no weakness; a near-duplicate is judged as its original)
  and with the kinds of problem it shows (``PROBLEMS``, a second head that makes the network look
  for each). Squashed to ``panel.resolution`` px, the size the demo's models draw at. Left out:
  undecodable files, and the size defects (too small, extreme aspect), which are facts about a
  file, not about a square picture at the models' resolution, and so cannot occur in what the
  panel judges. No filter score is a feature or a label;
- **the members**: ``panel.members`` networks (``fit.network``), each with its own seed, so its
  own initial weights and data order;
- **its validity**: the agreement with the ground truth on a further pool no member saw
  (``RATER_PANEL_HELD_OUT``): each member's ROC AUC, the majority's accuracy, and per problem
  the share of pictures showing it that the majority rejects. These go in the card beside the
  weights, in every evaluation's results, and in ``benchmarks/rater_panel.py``'s RESULT lines;
- **the cache**: the weights and card are kept under ``<data.root>/judges/rater_panel/<key>``,
  where the key hashes the panel's settings, its seeds, the pool generator's version, this
  module's and ``fit.py``'s source, and torch's version: the panel trains once per machine
  (``learned.py``), its members side by side on the data plane, beside the kind checker when
  that is missing too;
- **a pair**: each member scores both pictures (its probability that the picture is
  photogenic) and votes A, B, or tie when the two are within the tie margin; the pair goes by
  the majority (``comparisons.pair_outcomes``). The prompt is never read: the caption is hidden.

What it is and is not: a stand-in for people, trained on the world's ground truth. It knows only
the sample world's criteria as the world draws them (its light, placement, colour, background
and capture defects); a model's picture that is poor in a way the world never draws is unknown
to it.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from scipy.stats import rankdata

from photogenic.curation.simulate import truth_of
from photogenic.evaluation.judges.registry import VISUAL_APPEAL, register_judge, tie_margin
from photogenic.evaluation.judges.sample_world import fit as fitting
from photogenic.evaluation.judges.sample_world.learned import Learned
from photogenic.evaluation.prompts import Prompt
from photogenic.samplepool import seeds
from photogenic.samplepool.sample import PoolContext, build_sample
from photogenic.samplepool.spec import SamplePoolSpec
from photogenic.samplepool.world import WEAKNESSES
from photogenic.training.data import to_tensor

log = logging.getLogger(__name__)

#: defects that are facts about a file, not about a square picture at the models' resolution
SIZE_DEFECTS = ("too_small", "extreme_aspect")
#: what the second head learns to see: the world's weaknesses and its visible capture defects
PROBLEMS = (*WEAKNESSES, "off_centre", "cut_off", "underexposed", "overexposed", "washed_out", "blur", "noise",
            "text_overlay", "watermark")
#: weight of the problem head's loss beside the verdict's
PROBLEM_WEIGHT = 0.5


@dataclass(frozen=True)
class PanelSettings:
    members: int = 5
    train_pool: int = 4000
    held_out_pool: int = 1000
    epochs: int = 15
    resolution: int = 32

    @classmethod
    def from_config(cls, section: Any) -> PanelSettings:
        return cls(section.members, section.train_pool, section.held_out_pool, section.epochs, section.resolution)


@dataclass
class LabelledPool:
    images: np.ndarray  # N×3×R×R in [-1, 1]
    photogenic: np.ndarray  # N, bool
    problems: np.ndarray  # N×len(PROBLEMS), 0/1


def labelled_pool(n: int, seed: int, resolution: int) -> LabelledPool:
    """The judgeable pictures of an ``n``-sample world pool drawn with ``seed``, with the
    specialist's verdict and the problems each shows (see the module docstring)."""
    context = PoolContext.create(n=n, seed=seed, shard_size=n, spec=SamplePoolSpec())
    records = [build_sample(context, index) for index in range(n)]
    by_key = {r.key: r.truth for r in records}
    images, verdicts, problems = [], [], []
    for record in records:
        if set(record.truth["defects"]) & {"corrupt", "truncated", *SIZE_DEFECTS}:
            continue
        original = by_key.get(record.truth["near_duplicate_of"]) if record.truth["near_duplicate_of"] else None
        truth = truth_of(record.truth, original)
        images.append(to_tensor(Image.open(io.BytesIO(record.image)).convert("RGB"), resolution).numpy())
        verdicts.append(truth.photogenic)
        problems.append([p in truth.problems for p in PROBLEMS])
    return LabelledPool(np.stack(images), np.asarray(verdicts), np.asarray(problems, dtype=np.float32))


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """The chance that a random positive scores above a random negative (ties count half)."""
    positive = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if not n_pos or not n_neg:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _panel_loss(logits: torch.Tensor, batch: torch.Tensor, targets: tuple[np.ndarray, np.ndarray]) -> torch.Tensor:
    verdict, problems = (torch.from_numpy(t[batch.numpy()]) for t in targets)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    return bce(logits[:, 0], verdict) + PROBLEM_WEIGHT * bce(logits[:, 1:], problems)


def member_job(pool: LabelledPool, seed: int, epochs: int) -> fitting.FitJob:
    """Member ``seed`` of the panel: torch seed ``seed`` (initial weights and data order)."""
    return fitting.FitJob(f"member-{seed}", 1 + len(PROBLEMS), pool.images,
                          (pool.photogenic.astype(np.float32), pool.problems), _panel_loss, epochs, seed)


@torch.no_grad()
def member_probabilities(nets: list[torch.nn.Module], images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """N×members: each member's probability that each picture is photogenic."""
    out = []
    for start in range(0, len(images), batch_size):
        batch = torch.from_numpy(images[start:start + batch_size])
        out.append(torch.stack([torch.sigmoid(net(batch)[:, 0]) for net in nets], dim=1).numpy())
    return np.concatenate(out).astype(np.float64) if out else np.zeros((0, len(nets)))


def validity(nets: list[torch.nn.Module], pool: LabelledPool) -> dict[str, Any]:
    """Agreement with the ground truth on a pool no member saw."""
    p = member_probabilities(nets, pool.images)
    majority = (p > 0.5).sum(axis=1) * 2 > len(nets)
    rejected = {name: float((~majority[pool.problems[:, i] > 0]).mean())
                for i, name in enumerate(PROBLEMS) if (pool.problems[:, i] > 0).any()}
    return {"member_auc": [roc_auc(p[:, m], pool.photogenic) for m in range(len(nets))],
            "majority_accuracy": float((majority == pool.photogenic).mean()),
            "pictures": len(pool.photogenic), "photogenic_share": float(pool.photogenic.mean()),
            "rejected_per_problem": rejected}


class Panel(Learned):
    """The members' weights (``learned.Learned``: in memory, in the cache, or fitted)."""

    name = "rater_panel"
    outputs = 1 + len(PROBLEMS)
    sources = ("rater_panel.py", "fit.py")

    def __init__(self, settings: PanelSettings, cache: str | None, workers: int = 0):
        super().__init__(cache, workers)
        self.settings = settings

    def facts(self) -> dict[str, Any]:
        return {"settings": self.settings.__dict__, "train_seed": seeds.RATER_PANEL_TRAINING.start,
                "held_out_seed": seeds.RATER_PANEL_HELD_OUT.start}

    def renders(self) -> dict[str, tuple[Any, tuple]]:
        s = self.settings
        return {"train": (labelled_pool, (s.train_pool, seeds.RATER_PANEL_TRAINING.start, s.resolution)),
                "held_out": (labelled_pool, (s.held_out_pool, seeds.RATER_PANEL_HELD_OUT.start, s.resolution))}

    def jobs(self, drawn: dict[str, Any]) -> list[fitting.FitJob]:
        return [member_job(drawn["train"], m, self.settings.epochs) for m in range(self.settings.members)]

    def measure(self, nets: list[torch.nn.Module], drawn: dict[str, Any]) -> dict[str, Any]:
        train = drawn["train"]
        return {"settings": self.settings.__dict__, "training_pictures": len(train.photogenic),
                "training_photogenic_share": float(train.photogenic.mean()), "problems": list(PROBLEMS),
                "held_out": validity(nets, drawn["held_out"])}


class RaterPanelJudge:
    name = "rater_panel"
    criterion = VISUAL_APPEAL

    def __init__(self, settings: PanelSettings, cache: str | None, tie_margin: float = 0.05, workers: int = 0):
        self.panel, self.tie_margin = Panel(settings, cache, workers), tie_margin
        self.learns = (self.panel,)

    @property
    def card(self) -> dict[str, Any]:
        return self.panel.card

    def score_members(self, images: list[Image.Image], prompts: list[Prompt]) -> np.ndarray:
        """Images × members: each member's probability that the picture is photogenic. The
        prompts are not read (the caption is hidden from the raters)."""
        nets = self.panel.nets
        if not images:
            return np.zeros((0, len(nets)))
        resolution = self.panel.settings.resolution
        batch = np.stack([to_tensor(image.convert("RGB"), resolution).numpy() for image in images])
        return member_probabilities(nets, batch)

    def score(self, images: list[Image.Image], prompts: list[Prompt]) -> list[float]:
        return self.score_members(images, prompts).mean(axis=1).tolist()


register_judge("rater_panel", lambda s: RaterPanelJudge(PanelSettings.from_config(s.panel), s.cache,
                                                        tie_margin(s, "rater_panel", 0.05), s.workers))
