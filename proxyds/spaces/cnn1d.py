"""A heterogeneous 1D-CNN space for MNIST-1D, where accuracy does not simply grow with size.

The paper's B/K/M grid only scales width and kernel, so bigger is (almost) always better and
ranking by MACs already gets the ranking right; that makes it a poor test of a data proxy.
``cnn1d`` varies the choices that change *how* a network learns, not only how much it
computes. One config is a stem convolution, three stages of ``depth`` conv blocks with
``width``, ``2*width`` and ``2*width`` channels, and a head:

========  =====================================================================
param     meaning (integer codes, since ArchConfig params are ints)
========  =====================================================================
width     channels of the stem and stage 1 (8, 16, 24)
depth     conv blocks per stage (1, 2, 3)
kernel    kernel size of every convolution but 1x1 shortcuts (3, 5, 9)
down      downsampling: 0 none; 1 stride 2 in the first block of stages 2-3;
          2 max-pool 2 before stages 2-3; 3 strided stem (stride 4)
norm      1 BatchNorm after every conv; 0 BatchNorm after the stem only
residual  1 identity (or 1x1 projection) shortcut around every block; 0 none
act       0 ReLU, 1 GELU, 2 tanh
dropout   head dropout in percent (0, 30)
head      0 global average pool, 1 global max pool, 2 flatten (all positions)
========  =====================================================================

The 24 configs below were chosen once so that every level of every factor appears equally
often (8 of each width, 6 of each downsampling, 12 with and 12 without residuals, ...) with
at most 1.0M MACs per example, then frozen here so names and cached results stay stable.
Every model keeps a BatchNorm after the stem, so ``norm=0`` means "no normalisation inside
the stages".
"""

from __future__ import annotations

import torch
from torch import nn

from .registry import SearchSpace, params_space, register_space

__all__ = ["CNN1D_CONFIGS", "CNN1D"]

_DOWN = ("none", "stride", "pool", "stem")
_ACT = ("relu", "gelu", "tanh")
_HEAD = ("avg", "max", "flat")
_FIELDS = ("width", "depth", "kernel", "down", "norm", "residual", "act", "dropout", "head")

#: (width, depth, kernel, down, norm, residual, act, dropout, head), frozen; see the module doc.
CNN1D_CONFIGS: tuple[tuple[int, ...], ...] = (
    (8, 3, 3, 0, 1, 1, 2, 30, 2),
    (8, 1, 5, 2, 0, 0, 0, 0, 1),
    (8, 1, 9, 0, 1, 0, 1, 30, 0),
    (8, 2, 3, 1, 0, 1, 1, 0, 1),
    (8, 2, 5, 0, 1, 0, 2, 0, 0),
    (8, 2, 9, 2, 0, 1, 0, 30, 2),
    (8, 3, 3, 3, 1, 1, 0, 0, 2),
    (8, 3, 9, 1, 0, 0, 2, 30, 0),
    (16, 1, 3, 0, 1, 0, 0, 30, 1),
    (24, 1, 5, 3, 0, 1, 2, 0, 2),
    (16, 1, 9, 0, 0, 0, 1, 0, 0),
    (16, 2, 3, 2, 1, 0, 1, 0, 2),
    (16, 2, 5, 1, 1, 1, 2, 30, 0),
    (16, 3, 9, 3, 0, 0, 0, 30, 1),
    (16, 3, 5, 2, 1, 1, 0, 0, 1),
    (16, 3, 3, 0, 0, 1, 2, 30, 0),
    (24, 1, 3, 2, 0, 1, 1, 30, 0),
    (24, 1, 5, 1, 1, 0, 2, 0, 2),
    (24, 1, 9, 1, 0, 1, 0, 0, 1),
    (24, 2, 9, 3, 0, 0, 2, 0, 1),
    (24, 2, 5, 3, 1, 1, 1, 30, 2),
    (24, 2, 9, 3, 1, 0, 1, 30, 1),
    (24, 3, 3, 1, 1, 0, 1, 0, 2),
    (16, 3, 5, 2, 0, 1, 0, 30, 0),
)


def config_name(p: dict) -> str:
    """``w16-d2-k5-stride-bn-res-gelu-p30-avg``: every choice readable in the name."""
    return "-".join([
        f"w{p['width']}", f"d{p['depth']}", f"k{p['kernel']}", _DOWN[p["down"]],
        "bn" if p["norm"] else "nobn", "res" if p["residual"] else "plain", _ACT[p["act"]],
        f"p{p['dropout']}", _HEAD[p["head"]],
    ])


def _act(code: int) -> nn.Module:
    return (nn.ReLU, nn.GELU, nn.Tanh)[code]()


class _Block(nn.Module):
    """conv(k) [+ BN] + activation, with an optional shortcut (1x1 projection when the shape changes);
    ``dims`` 1 for signals (this space), 2 for images (``digits-cnn``)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, norm: bool, residual: bool, act: int,
                 dims: int = 1):
        super().__init__()
        conv, batchnorm = {1: (nn.Conv1d, nn.BatchNorm1d), 2: (nn.Conv2d, nn.BatchNorm2d)}[dims]
        self.conv = conv(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=not norm)
        self.norm = batchnorm(cout) if norm else nn.Identity()
        self.act = _act(act)
        self.shortcut = None
        if residual:
            same = cin == cout and stride == 1
            self.shortcut = nn.Identity() if same else conv(cin, cout, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.norm(self.conv(x))
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return self.act(out)


class _ConvNet(nn.Module):
    """``stem`` -> ``stages`` -> the config's head (avg / max pool or flatten, dropout, linear),
    with timm-style methods; shared by ``cnn1d`` and ``digits-cnn`` (``dims`` 1 or 2)."""

    def _add_head(self, p: dict, channels: int, positions: int, num_classes: int, dims: int) -> None:
        """``positions``: spatial positions after the stages (flattened by head 2)."""
        avg, peak = {1: (nn.AdaptiveAvgPool1d, nn.AdaptiveMaxPool1d),
                     2: (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)}[dims]
        head = p["head"]
        self.pool = (avg(1), peak(1), nn.Identity())[head]
        self.num_features = channels * (positions if head == 2 else 1)
        self.drop = nn.Dropout(p["dropout"] / 100)
        self.fc = nn.Linear(self.num_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (pooled, or flattened for the flatten head), ``(N, num_features)``."""
        return torch.flatten(self.pool(self.stages(self.stem(x))), 1)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class CNN1D(_ConvNet):
    """One ``cnn1d`` config over ``(in_channels, length)`` signals, timm-style methods."""

    def __init__(self, params: dict, num_classes: int, in_channels: int = 1, length: int = 40):
        super().__init__()
        p = params
        w, k, down = p["width"], p["kernel"], p["down"]
        stem_stride = 4 if down == 3 else 1
        self.stem = nn.Sequential(nn.Conv1d(in_channels, w, k, stride=stem_stride, padding=k // 2, bias=False),
                                  nn.BatchNorm1d(w), _act(p["act"]))
        length = (length + 2 * (k // 2) - k) // stem_stride + 1
        layers, cin = [], w
        for stage, cout in enumerate((w, 2 * w, 2 * w)):
            for block in range(p["depth"]):
                stride = 1
                if stage > 0 and block == 0:
                    if down == 2:
                        layers.append(nn.MaxPool1d(2))
                        length //= 2
                    elif down == 1:
                        stride = 2
                        length = (length - 1) // 2 + 1
                layers.append(_Block(cin, cout, k, stride, bool(p["norm"]), bool(p["residual"]), p["act"]))
                cin = cout
        self.stages = nn.Sequential(*layers)
        self._add_head(p, cin, length, num_classes, dims=1)


@register_space("cnn1d")
def cnn1d() -> SearchSpace:
    """24 heterogeneous 1D CNNs for MNIST-1D (input ``(1, 40)``): width, depth, kernel,
    downsampling, normalisation, residuals, activation, dropout and head all vary."""
    return params_space("cnn1d", (1, 40), (dict(zip(_FIELDS, v)) for v in CNN1D_CONFIGS), config_name, CNN1D,
                        description="heterogeneous 1D CNNs for MNIST-1D: stem + 3 stages (w, 2w, 2w) of "
                                    "depth conv blocks; width, depth, kernel, downsampling (none/stride/pool/"
                                    "strided stem), BatchNorm in stages or not, residual or not, "
                                    "ReLU/GELU/tanh, head dropout, avg/max/flatten head vary.")
