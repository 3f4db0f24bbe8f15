"""The LAION improved-aesthetic-predictor head as its authors define it (their ``MLP`` class,
state-dict keys ``layers.{0,2,4,6,7}``), with random weights: what a user's downloaded head file
holds, for the tests of photogenic.clip.load_aesthetic_head and the scorer and judge on it."""

from torch import nn


def aesthetic_mlp(dim: int) -> nn.Module:
    class AestheticMLP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = nn.Sequential(
                nn.Linear(dim, 1024), nn.Dropout(0.2), nn.Linear(1024, 128), nn.Dropout(0.2),
                nn.Linear(128, 64), nn.Dropout(0.1), nn.Linear(64, 16), nn.Linear(16, 1),
            )

        def forward(self, x):
            return self.layers(x)

    return AestheticMLP().eval()
