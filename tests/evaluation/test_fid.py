"""Fréchet distance and KID against hand-computed cases; the TorchScript extractor with random weights."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from photogenic.errors import ConfigError
from photogenic.evaluation.fid import (
    TorchScriptExtractor,
    fid_from_features,
    frechet_distance,
    kernel_inception_distance,
    polynomial_mmd2,
)


def test_frechet_distance_one_dimensional_by_hand():
    # 1-D: (mu1 - mu2)^2 + s1 + s2 - 2 sqrt(s1 s2) = (sqrt(s1) - sqrt(s2))^2 + (mu1 - mu2)^2
    assert frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([3.0]), np.array([[9.0]])) == pytest.approx(
        4.0 + 4 + 9 - 2 * 6)


def test_frechet_distance_diagonal_and_identical():
    mu1, mu2 = np.array([0.0, 1.0]), np.array([1.0, 1.0])
    s1, s2 = np.diag([1.0, 4.0]), np.diag([4.0, 4.0])
    # |mu diff|^2 = 1; traces 5 + 8; sqrt(s1 s2) = diag(2, 4), trace 6 -> 1 + 13 - 12 = 2
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(2.0)
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(200, 5))
    assert fid_from_features(feats, feats) == pytest.approx(0.0, abs=1e-8)
    shifted = feats + np.array([3.0, 0, 0, 0, 0])
    assert fid_from_features(feats, shifted) == pytest.approx(9.0, rel=1e-6)


def test_frechet_distance_singular_covariances_stay_finite():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(3, 8)), rng.normal(size=(3, 8))  # 3 samples in 8-d: rank-deficient
    value = fid_from_features(a, b)
    assert math.isfinite(value) and value > 0


def test_polynomial_mmd_by_hand():
    # d = 1, k(x, y) = (x y + 1)^3; X = {0, 1}, Y = {0, 2}
    # kxx off-diagonal: k(0,1) = 1 -> mean 1; kyy off-diagonal: k(0,2) = 1 -> mean 1
    # kxy: k(0,0)=1, k(0,2)=1, k(1,0)=1, k(1,2)=27 -> mean 30/4
    x, y = np.array([[0.0], [1.0]]), np.array([[0.0], [2.0]])
    assert polynomial_mmd2(x, y) == pytest.approx(1 + 1 - 2 * 7.5)
    same = np.random.default_rng(2).normal(size=(50, 4))
    kid, std = kernel_inception_distance(same, same.copy(), subset_size=50, subsets=3)
    assert kid == pytest.approx(polynomial_mmd2(same, same)) and std == pytest.approx(0.0)
    far = same + 5.0
    assert kernel_inception_distance(same, far, subset_size=20, subsets=5)[0] > 1.0


def test_torchscript_extractor_with_random_weights(tmp_path):
    import torch

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3, stride=2)

        def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
            feats = self.conv(x / 255.0).mean(dim=(2, 3))
            return feats if return_features else feats.sum(dim=1)

    torch.manual_seed(0)
    path = tmp_path / "extractor.pt"
    torch.jit.script(Tiny()).save(str(path))
    extractor = TorchScriptExtractor.load(str(path), size=32, device="cpu")
    red = [Image.new("RGB", (40, 30), (200, 30, 30)) for _ in range(3)]
    blue = [Image.new("RGB", (20, 20), (30, 30, 200)) for _ in range(3)]
    features = extractor.features(red + blue)
    assert features.shape == (6, 8)
    assert np.allclose(features[0], features[1]) and not np.allclose(features[0], features[3])
    with pytest.raises(ConfigError, match="evaluate.fid.extractor"):
        TorchScriptExtractor.load(str(tmp_path / "missing.pt"))
