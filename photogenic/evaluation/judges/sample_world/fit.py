"""The small convolutional network the sample-world judges learn, and the loop that fits one.

Both the subject-kind checker and the rater panel's members are this network with another head,
fitted on thumbnails of a pool of the world with a fixed seed, so a given pool and seed give the
same weights: a fit runs on one torch thread, whatever machine or process runs it (another
thread count sums floats in another order), in channels-last layout (1.2-1.4x faster on CPU).

``fit_all`` fits several networks at once on the data plane (photogenic.dataplane), one per
worker: on two cores two one-thread fits finish 1.4x sooner than one two-thread fit after
another, since these networks are too small to keep two threads busy.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from photogenic.dataplane.pipeline import EachRow, Step, map_rows

#: a loss: (logits, the batch's row indices, the targets) -> scalar
Loss = Callable[[torch.Tensor, torch.Tensor, Any], torch.Tensor]


def network(outputs: int) -> torch.nn.Module:
    """Five convolutions in three stages and a linear head (about 140k weights at 32 px)."""
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.GELU(), nn.Conv2d(32, 32, 3, padding=1), nn.GELU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.GELU(), nn.Conv2d(64, 64, 3, padding=1), nn.GELU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1), nn.GELU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2),
        nn.Linear(128, outputs))


@dataclass
class FitJob:
    """One network to fit: ``loss(logits, batch, targets)`` says how wrong the logits of the
    images at the ``batch`` indices are (a module-level function: the job travels to a worker)."""

    name: str
    outputs: int
    images: np.ndarray  # N×3×H×W float32 in [-1, 1]
    targets: Any
    loss: Loss
    epochs: int
    seed: int
    batch_size: int = 64
    learning_rate: float = 2e-3


def fit(job: FitJob) -> torch.nn.Module:
    """``network(job.outputs)`` fitted to the job's images. AdamW with a one-cycle schedule;
    half of each batch mirrored (the world draws nothing facing one way only). The seed decides
    the initial weights and the data order."""
    images = torch.from_numpy(np.ascontiguousarray(job.images))
    threads = torch.get_num_threads()
    # enable_grad: a first score under no_grad may be what trains a default judge
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        torch.set_num_threads(1)
        try:
            torch.manual_seed(job.seed)
            net = network(job.outputs).to(memory_format=torch.channels_last)
            optimizer = torch.optim.AdamW(net.parameters(), lr=job.learning_rate, weight_decay=1e-4)
            steps = job.epochs * math.ceil(len(images) / job.batch_size)
            schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=job.learning_rate, total_steps=steps)
            net.train()
            for _ in range(job.epochs):
                order = torch.randperm(len(images))
                for start in range(0, len(images), job.batch_size):
                    batch = order[start:start + job.batch_size]
                    x = images[batch]
                    flip = torch.rand(len(batch)) < 0.5
                    x[flip] = x[flip].flip(-1)
                    value = job.loss(net(x.contiguous(memory_format=torch.channels_last)), batch, job.targets)
                    optimizer.zero_grad()
                    value.backward()
                    optimizer.step()
                    schedule.step()
        finally:
            torch.set_num_threads(threads)
    return net.to(memory_format=torch.contiguous_format).eval()


def run_all(calls: list[tuple[Callable[..., Any], tuple]], workers: int, desc: str,
            progress: bool = True) -> list[Any]:
    """``[function(*args) for function, args in calls]``, ``workers`` at once as tasks on the data
    plane (``map_rows``, one call per chunk: a local Ray, or the cluster ``RAY_ADDRESS`` names),
    or one after another in this process when ``workers`` is 0. Functions must be importable
    (they travel to the workers)."""
    step = Step(desc, functools.partial(EachRow, _invoke), workers=min(workers, len(calls)))
    return [result for _, result in map_rows(calls, lambda call: call, step, key=lambda call: call[0].__name__,
                                             batch_size=1, desc=desc, progress=progress, total=len(calls))]


def fit_all(jobs: list[FitJob], workers: int, progress: bool = True) -> list[torch.nn.Module]:
    """Every job fitted, in order, ``workers`` at once (see ``run_all``); the weights do not
    depend on where each was fitted."""
    states = run_all([(fitted_state, (job,)) for job in jobs], workers, "train judges", progress)
    nets = []
    for job, state in zip(jobs, states):
        net = network(job.outputs)
        net.load_state_dict(state)
        nets.append(net.eval())
    return nets


def fitted_state(job: FitJob) -> dict[str, torch.Tensor]:
    """The fitted network's weights: what travels back from a worker."""
    return {k: v.contiguous() for k, v in fit(job).state_dict().items()}


def _invoke(call: tuple[Callable[..., Any], tuple]) -> Any:
    function, args = call
    return function(*args)
