"""The small convolutional network the sample-world judges learn, and the loop that fits one.

Both the subject-kind checker and the rater panel's members are this network with another head,
fitted on thumbnails of a pool of the world with a fixed seed, so a given pool and seed give the
same weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


def network(outputs: int) -> torch.nn.Module:
    """Five convolutions in three stages and a linear head (about 140k weights at 32 px)."""
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.GELU(), nn.Conv2d(32, 32, 3, padding=1), nn.GELU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.GELU(), nn.Conv2d(64, 64, 3, padding=1), nn.GELU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1), nn.GELU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2),
        nn.Linear(128, outputs))


def fit(outputs: int, images: torch.Tensor, loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], *,
        epochs: int, seed: int, batch_size: int = 64, learning_rate: float = 2e-3) -> torch.nn.Module:
    """A ``network(outputs)`` fitted to ``images`` (N×3×H×W): ``loss(logits, batch_indices)``
    says how wrong the logits of the images at those indices are. AdamW with a one-cycle
    schedule; half of each batch mirrored (the world draws nothing facing one way only). The
    seed decides the initial weights and the data order."""
    # enable_grad: a first score under no_grad may be what trains a default judge
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        torch.manual_seed(seed)
        net = network(outputs)
        optimizer = torch.optim.AdamW(net.parameters(), lr=learning_rate, weight_decay=1e-4)
        steps = epochs * math.ceil(len(images) / batch_size)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=learning_rate, total_steps=steps)
        net.train()
        for _ in range(epochs):
            order = torch.randperm(len(images))
            for start in range(0, len(images), batch_size):
                batch = order[start:start + batch_size]
                x = images[batch]
                flip = torch.rand(len(batch)) < 0.5
                x[flip] = x[flip].flip(-1)
                value = loss(net(x), batch)
                optimizer.zero_grad()
                value.backward()
                optimizer.step()
                schedule.step()
    return net.eval()
