"""Subject kind for the sample world: does the picture of "a red vintage car" show a car?

The scene checker (``scene_check``) measures colour, placement and background in pixels; a
red blob in the right place on the right beach gets full marks there. Telling a car from a
cat needs a classifier. CLIP is one when a checkpoint is configured (``clip_score``); without
one, this module trains a small CNN on pictures of the sample world, whose ground truth names
the kind of each, so it needs no weights from anywhere:

- **training pictures**: a pool of ``POOL_SIZE`` samples drawn as ``photogenic sample-pool``
  draws them (every kind, colour, background, light and placement, with the pool's capture
  defects, overlays and odd crops), with another seed than the demo's, labelled with the kind
  its ground truth records; squashed to ``WORK`` px, the thumbnail size at which the question
  "which kind?" is asked of any image. Pictures like the ones models learn from make a checker
  that credits a model's rough but recognisable subject: one trained on clean renders only
  named far fewer of the same samples (0.13 against 0.28 for the same model);
- **the network**: ``fit.network``, five convolutions in three stages and a linear head (about 140k
  weights), trained for ``EPOCHS`` epochs with a fixed seed, so a given world and seed give the same checker;
  building the pool and training take about two minutes on one CPU core, once per machine
  (``learned.py``: the weights are kept under ``<data.root>/judges/subject_kind/<key>``);
- **the score** of an image for a prompt is the probability the checker gives the kind the
  prompt names: near 1 for a legible subject of that kind, near 1/9 or below for a blob. A
  prompt that names no kind is not judged (NaN).

Honest limits: the checker knows only the world's nine kinds as the world draws them; its
accuracy on a held-out pool is measured by ``benchmarks/subject_legibility.py``; a model can
only be compared with another through it, not with a photograph of a real car.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch
from PIL import Image

from photogenic.evaluation.judges.registry import TEXT_FAITHFULNESS, register_judge, tie_margin
from photogenic.evaluation.judges.sample_world.fit import FitJob, fit
from photogenic.evaluation.judges.sample_world.learned import Learned
from photogenic.evaluation.prompts import Prompt
from photogenic.samplepool import seeds
from photogenic.samplepool.sample import PoolContext, build_sample
from photogenic.samplepool.spec import SamplePoolSpec
from photogenic.samplepool.world import KINDS
from photogenic.training.data import to_tensor

log = logging.getLogger(__name__)

WORK = 32
POOL_SIZE = 4000
#: not the demo pool's seed (0): the checker learns from other pictures than the models did
POOL_SEED = seeds.KIND_CHECKER.start
#: a pool it never saw, for measuring it
HELD_OUT_SEED = seeds.KIND_CHECKER_HELD_OUT.start
EPOCHS = 20


def kinds() -> tuple[str, ...]:
    return tuple(KINDS)


def to_work(image: Image.Image) -> torch.Tensor:
    """Centre square, squashed to ``WORK`` px as the trainer squashes its images (area averaging,
    [-1, 1], channels first)."""

    return to_tensor(image.convert("RGB"), WORK)


def training_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The decodable images of an ``n``-sample world pool drawn with ``seed``, as (images
    N×3×WORK×WORK, kind indices N). Built in memory, as ``photogenic sample-pool`` would write them."""
    import io

    names = kinds()
    context = PoolContext.create(n=n, seed=seed, shard_size=n, spec=SamplePoolSpec())
    images, labels = [], []
    for index in range(n):
        record = build_sample(context, index)
        try:
            image = to_work(Image.open(io.BytesIO(record.image)))
        except OSError:  # the pool's corrupt and truncated files: nothing to learn from
            continue
        images.append(image.numpy())
        labels.append(names.index(record.truth["subject_kind"]))
    return np.stack(images), np.asarray(labels)


def _kind_loss(logits: torch.Tensor, batch: torch.Tensor, labels: np.ndarray) -> torch.Tensor:
    return torch.nn.functional.cross_entropy(logits, torch.from_numpy(labels[batch.numpy()]))


def classifier_job(n: int = POOL_SIZE, epochs: int = EPOCHS, seed: int = POOL_SEED, batch_size: int = 64,
                   drawn: tuple[np.ndarray, np.ndarray] | None = None) -> FitJob:
    """The fit of a kind classifier on a fresh world pool (``drawn``: ``training_images(n, seed)``
    if it was drawn already)."""
    x, y = drawn if drawn is not None else training_images(n, seed)
    return FitJob("kind-checker", len(kinds()), x, y.astype(np.int64), _kind_loss, epochs, seed, batch_size)


def train_classifier(n: int = POOL_SIZE, epochs: int = EPOCHS, seed: int = POOL_SEED,
                     batch_size: int = 64) -> torch.nn.Module:
    """A kind classifier trained here on a fresh world pool; the same arguments give the same weights."""
    return fit(classifier_job(n, epochs, seed, batch_size))


class KindChecker(Learned):
    """The default checker's weights (``learned.Learned``: in memory, in the cache, or fitted)."""

    name = "subject_kind"
    outputs = len(KINDS)
    sources = ("kind_check.py", "fit.py")

    def facts(self) -> dict[str, object]:
        return {"pool": POOL_SIZE, "epochs": EPOCHS, "seed": POOL_SEED, "work": WORK, "kinds": kinds()}

    def renders(self) -> dict[str, tuple[object, tuple]]:
        return {"train": (training_images, (POOL_SIZE, POOL_SEED))}

    def jobs(self, drawn: dict[str, object]) -> list[FitJob]:
        return [classifier_job(POOL_SIZE, EPOCHS, POOL_SEED, drawn=drawn["train"])]


def classifier(cache: str | None = None) -> torch.nn.Module:
    """The default checker: fitted once per process, or once per machine with a ``cache`` folder."""
    return KindChecker(cache).nets[0]


@torch.no_grad()
def kind_probabilities(images: list[Image.Image], net: torch.nn.Module | None = None) -> np.ndarray:
    """Per image, the checker's probability of each kind (columns in ``kinds()`` order)."""
    net = net if net is not None else classifier()
    if not images:
        return np.zeros((0, len(kinds())))
    batch = torch.stack([to_work(image) for image in images])
    return torch.softmax(net(batch), dim=1).numpy().astype(np.float64)


def subject_kind_scores(images: list[Image.Image], prompts: list[Prompt],
                        net: torch.nn.Module | None = None) -> list[float]:
    """The probability of the kind each prompt names; NaN for a prompt that names none (or one
    the world does not know)."""
    names = kinds()
    judged = [i for i, p in enumerate(prompts) if p.kind in names]
    scores = [math.nan] * len(images)
    probabilities = kind_probabilities([images[i] for i in judged], net)
    for row, i in enumerate(judged):
        scores[i] = float(probabilities[row, names.index(prompts[i].kind)])
    return scores


class SubjectKindJudge:
    name = "subject_kind"
    criterion = TEXT_FAITHFULNESS

    def __init__(self, cache: str | None = None, tie_margin: float = 0.05, workers: int = 0):
        self.checker, self.tie_margin = KindChecker(cache, workers), tie_margin
        self.learns = (self.checker,)

    def score(self, images: list[Image.Image], prompts: list[Prompt]) -> list[float]:
        return subject_kind_scores(images, prompts, self.checker.nets[0])


register_judge("subject_kind", lambda s: SubjectKindJudge(s.cache, tie_margin(s, "subject_kind", 0.05), s.workers))
