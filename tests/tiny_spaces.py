"""A user-defined search space, loaded by tests through ``--space tiny_spaces:tiny2d``:
two small CNNs on 16x16 RGB images, cheap enough for image builds in unit tests; and
``TinyNet``, a linear model the spaces tests build their own toy spaces from."""

from __future__ import annotations

import torch
from torch import nn

from proxyds.spaces import ArchConfig, SearchSpace


class TinyCNN(nn.Module):
    def __init__(self, width: int, num_classes: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.num_features = 2 * width
        self.head = nn.Linear(self.num_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward_head(self, f: torch.Tensor) -> torch.Tensor:
        return self.head(f)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class TinyNet(nn.Module):
    """A linear layer and a linear head on 4 features: the smallest model with the SearchSpace contract."""

    def __init__(self, width: int, num_classes: int) -> None:
        super().__init__()
        self.body = nn.Linear(4, width)
        self.fc = nn.Linear(width, num_classes)
        self.num_features = width

    def forward_features(self, x):
        return self.body(x)

    def forward_head(self, features):
        return self.fc(features)

    def forward(self, x):
        return self.forward_head(self.forward_features(x))


tiny2d = SearchSpace("tiny2d", (3, 16, 16), [ArchConfig(f"w{w}", {"w": w}) for w in (4, 8)],
                     lambda c, n: TinyCNN(c.params["w"], n), description="two tiny CNNs for tests")
