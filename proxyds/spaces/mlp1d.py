"""A space of multilayer perceptrons for MNIST-1D: the second ranking benchmark's space.

MNIST-1D was built so that MLPs and CNNs differ (an MLP cannot share weights across
positions), and MLPs vary a lot with depth, normalisation and activation, so this space ranks
differently from ``cnn1d``. One config flattens the ``(1, 40)`` signal, applies ``depth``
hidden layers of ``width`` units and a linear head:

========  =================================================================
param     meaning (integer codes)
========  =================================================================
width     hidden units of every layer (32, 64, 128, 256)
depth     hidden layers (1, 2, 3, 4)
act       0 ReLU, 1 GELU, 2 tanh
norm      0 none, 1 BatchNorm, 2 LayerNorm (after each hidden linear layer)
dropout   dropout after every hidden layer, in percent (0, 20)
residual  1: hidden layers after the first add their input (pre-activation sum)
========  =================================================================

The 24 configs were drawn once with every factor's levels shuffled into equal counts (seed
8), then frozen here; four depth-1 configs had ``residual`` (a no-op there) set to 0 and a
duplicate was made residual.
"""

from __future__ import annotations

import torch
from torch import nn

from .registry import SearchSpace, params_space, register_space

__all__ = ["MLP1D_CONFIGS", "MLP1D"]

_FIELDS = ("width", "depth", "act", "norm", "dropout", "residual")
_ACT = ("relu", "gelu", "tanh")
_NORM = ("none", "bn", "ln")

#: (width, depth, act, norm, dropout, residual), frozen; see the module doc.
MLP1D_CONFIGS: tuple[tuple[int, ...], ...] = (
    (32, 1, 0, 2, 0, 0), (32, 1, 0, 2, 20, 0), (32, 1, 1, 0, 20, 0), (32, 1, 1, 1, 20, 0),
    (32, 2, 2, 1, 20, 0), (32, 3, 0, 2, 0, 1), (64, 1, 2, 0, 0, 0), (64, 2, 1, 1, 0, 1),
    (64, 2, 1, 1, 20, 1), (64, 3, 1, 0, 0, 1), (64, 3, 2, 2, 0, 0), (64, 4, 1, 0, 0, 1),
    (128, 1, 0, 0, 0, 0), (128, 2, 0, 0, 20, 1), (128, 2, 2, 2, 20, 1), (128, 3, 0, 2, 20, 0),
    (128, 3, 1, 0, 20, 0), (128, 4, 2, 0, 20, 0), (256, 2, 2, 1, 0, 1), (256, 3, 1, 2, 0, 0),
    (256, 4, 0, 1, 0, 0), (256, 4, 0, 2, 0, 1), (256, 4, 2, 1, 20, 0), (256, 4, 2, 1, 20, 1),
)


def config_name(p: dict) -> str:
    """``w64-d2-gelu-bn-p20-res``."""
    return "-".join([f"w{p['width']}", f"d{p['depth']}", _ACT[p["act"]], _NORM[p["norm"]], f"p{p['dropout']}",
                     "res" if p["residual"] else "plain"])


class _Layer(nn.Module):
    def __init__(self, cin: int, cout: int, p: dict, residual: bool):
        super().__init__()
        self.linear = nn.Linear(cin, cout)
        self.norm = (nn.Identity(), nn.BatchNorm1d(cout), nn.LayerNorm(cout))[p["norm"]]
        self.act = (nn.ReLU, nn.GELU, nn.Tanh)[p["act"]]()
        self.drop = nn.Dropout(p["dropout"] / 100)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.norm(self.linear(x))
        if self.residual:
            out = out + x
        return self.drop(self.act(out))


class MLP1D(nn.Module):
    """One ``mlp1d`` config over ``(in_channels, length)`` signals, timm-style methods."""

    def __init__(self, params: dict, num_classes: int, in_channels: int = 1, length: int = 40):
        super().__init__()
        w = params["width"]
        self.layers = nn.Sequential(*[
            _Layer(in_channels * length if i == 0 else w, w, params, residual=bool(params["residual"]) and i > 0)
            for i in range(params["depth"])])
        self.num_features = w
        self.fc = nn.Linear(w, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(torch.flatten(x, 1))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register_space("mlp1d")
def mlp1d() -> SearchSpace:
    """24 MLPs for MNIST-1D (input ``(1, 40)``): width, depth, activation, normalisation,
    dropout and residual connections vary."""
    return params_space("mlp1d", (1, 40), (dict(zip(_FIELDS, v)) for v in MLP1D_CONFIGS), config_name, MLP1D,
                        description="MLPs for MNIST-1D: 1-4 hidden layers of 32-256 units; ReLU/GELU/tanh, "
                                    "no norm/BatchNorm/LayerNorm, dropout 0/0.2, residual or not vary.")
