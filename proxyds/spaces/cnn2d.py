"""``digits-cnn``: a small heterogeneous 2-D CNN space for 8x8 single-channel images.

Built for the ``digits`` preset (scikit-learn's handwritten digits), the real-image benchmark
that runs on a small CPU. Like :mod:`.cnn1d` it varies how a network learns, not only how much
it computes, so that ranking by MACs does not already give the ranking. One config is a stem
convolution, two stages of ``depth`` conv blocks with ``width`` and ``2*width`` channels, and
a head:

========  =====================================================================
param     meaning (integer codes, since ArchConfig params are ints)
========  =====================================================================
width     channels of the stem and stage 1 (8, 16, 24)
depth     conv blocks per stage (1, 2)
kernel    kernel size of every convolution but 1x1 shortcuts (3, 5)
down      before stage 2: 0 none (8x8 throughout); 1 stride 2; 2 max-pool 2
norm      1 BatchNorm after every conv; 0 BatchNorm after the stem only
residual  1 identity (or 1x1 projection) shortcut around every block; 0 none
act       0 ReLU, 1 GELU, 2 tanh
dropout   head dropout in percent (0, 30)
head      0 global average pool, 1 global max pool, 2 flatten (all positions)
========  =====================================================================

The 16 configs below were drawn once with a seeded generator (every factor's levels spread
evenly over the configs), the three largest then cut to kernel 3 so that none exceeds 1.5M MACs
per example, and frozen here so that names and cached results stay stable.
"""

from __future__ import annotations

from torch import nn

from .cnn1d import _FIELDS, _Block, _ConvNet, _act, config_name  # the same blocks and names, in 2-D
from .registry import SearchSpace, params_space, register_space

__all__ = ["DIGITS_CNN_CONFIGS", "CNN2D"]


#: (width, depth, kernel, down, norm, residual, act, dropout, head), frozen; see the module doc.
DIGITS_CNN_CONFIGS: tuple[tuple[int, ...], ...] = (
    (8, 1, 3, 2, 1, 1, 2, 30, 0),
    (8, 1, 3, 0, 0, 0, 0, 0, 0),
    (8, 2, 3, 2, 0, 1, 1, 30, 1),
    (16, 1, 3, 1, 1, 0, 0, 0, 1),
    (8, 2, 3, 0, 1, 0, 1, 0, 1),
    (8, 2, 3, 0, 1, 1, 2, 0, 0),
    (24, 1, 3, 1, 1, 0, 0, 30, 2),
    (16, 2, 3, 1, 0, 0, 0, 0, 2),
    (16, 1, 5, 2, 0, 1, 0, 0, 2),
    (8, 2, 5, 0, 0, 0, 1, 30, 2),
    (16, 1, 5, 0, 0, 1, 2, 30, 0),
    (24, 1, 5, 2, 0, 0, 2, 0, 1),
    (24, 1, 5, 1, 1, 1, 2, 30, 0),
    (24, 2, 3, 2, 1, 1, 1, 0, 1),
    (16, 2, 3, 1, 0, 1, 1, 30, 0),
    (16, 2, 3, 2, 1, 0, 0, 30, 2),
)


class CNN2D(_ConvNet):
    """One ``digits-cnn`` config over ``(in_channels, size, size)`` images, timm-style methods."""

    def __init__(self, params: dict, num_classes: int, in_channels: int = 1, size: int = 8):
        super().__init__()
        p = params
        w, k, down = p["width"], p["kernel"], p["down"]
        self.stem = nn.Sequential(nn.Conv2d(in_channels, w, k, padding=k // 2, bias=False), nn.BatchNorm2d(w),
                                  _act(p["act"]))
        layers, cin = [], w
        for stage, cout in enumerate((w, 2 * w)):
            for block in range(p["depth"]):
                stride = 1
                if stage == 1 and block == 0:
                    if down == 2:
                        layers.append(nn.MaxPool2d(2))
                        size //= 2
                    elif down == 1:
                        stride = 2
                        size = (size - 1) // 2 + 1
                layers.append(_Block(cin, cout, k, stride, bool(p["norm"]), bool(p["residual"]), p["act"], dims=2))
                cin = cout
        self.stages = nn.Sequential(*layers)
        self._add_head(p, cin, size * size, num_classes, dims=2)


@register_space("digits-cnn")
def digits_cnn() -> SearchSpace:
    """16 heterogeneous 2-D CNNs for 8x8 grey images (the ``digits`` preset; input ``(1, 8, 8)``)."""
    return params_space("digits-cnn", (1, 8, 8), (dict(zip(_FIELDS, v)) for v in DIGITS_CNN_CONFIGS), config_name,
                        CNN2D,
                        description="heterogeneous 2D CNNs for 8x8 grey digits: stem + 2 stages (w, 2w) of depth "
                                    "conv blocks; width, depth, kernel, downsampling (none/stride/pool), "
                                    "BatchNorm in stages or not, residual or not, ReLU/GELU/tanh, head dropout, "
                                    "avg/max/flatten head vary.")
