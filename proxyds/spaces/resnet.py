"""Residual networks in 1D and 2D, and the paper's B/K/M search spaces built on them.

One implementation serves both dimensionalities: :class:`ResNet` takes ``dim`` (1 or 2)
and picks ``Conv1d``/``BatchNorm1d`` or ``Conv2d``/``BatchNorm2d``, so the MNIST-1D space
and the CIFAR ResNet20 space differ only in their input shape and blocks per stage.

The B/K/M grid is the one of Park 2019, Table 1:

* **B** — base filters: channels of the stem and of stage 1;
* **K** — kernel size of every convolution except the 1x1 projection shortcuts (odd, so
  ``padding=K//2`` keeps the length/size);
* **M** — multiplier: the width of the LAST stage relative to B. The three stages have
  ``B``, ``B*M//2`` and ``B*M`` channels, so ``B=16, M=4`` is the classic 16/32/64 ResNet20.

B in {8, 16, 32} x K in {3, 5} x M in {2, 4} gives 12 configs named ``"B{B}-K{K}-M{M}"``,
ordered by B, then K, then M, as in the paper's table. Each of B, K and M strictly raises
the compute (MACs), so the cheapest config is ``B8-K3-M2`` and the most expensive
``B32-K5-M4``.
"""

from __future__ import annotations

import torch
from torch import nn

from .registry import ArchConfig, SearchSpace, register_space

__all__ = ["ResNet", "BKM_GRID"]

#: The paper's grid: (B, K, M) values, in Table 1's order.
BKM_GRID: tuple[tuple[int, int, int], ...] = tuple(
    (b, k, m) for b in (8, 16, 32) for k in (3, 5) for m in (2, 4)
)

_CONV = {1: nn.Conv1d, 2: nn.Conv2d}
_BN = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d}
_POOL = {1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d}


class _BasicBlock(nn.Module):
    """Post-activation basic block: conv-BN-ReLU-conv-BN, plus shortcut, then ReLU.

    The shortcut is the identity when shape is preserved, otherwise a strided 1x1
    convolution with BatchNorm (He et al. 2016, option B).
    """

    def __init__(self, dim: int, in_ch: int, out_ch: int, kernel_size: int, stride: int) -> None:
        super().__init__()
        conv, bn = _CONV[dim], _BN[dim]
        pad = kernel_size // 2
        self.conv1 = conv(in_ch, out_ch, kernel_size, stride=stride, padding=pad, bias=False)
        self.bn1 = bn(out_ch)
        self.conv2 = conv(out_ch, out_ch, kernel_size, stride=1, padding=pad, bias=False)
        self.bn2 = bn(out_ch)
        self.act = nn.ReLU(inplace=True)
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(
                conv(in_ch, out_ch, 1, stride=stride, bias=False), bn(out_ch)
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act(out + self.shortcut(x))


class ResNet(nn.Module):
    """A CIFAR-style ResNet over 1D sequences (``dim=1``) or 2D images (``dim=2``).

    Stem ``conv(in_channels -> widths[0], kernel_size)`` + BN + ReLU, then one stage per
    entry of ``widths`` with ``blocks_per_stage`` basic blocks each; every stage after the
    first halves the resolution in its first block. Global average pooling gives the
    ``num_features = widths[-1]`` penultimate features, and a Linear head the logits.
    The methods follow timm: ``forward_features`` (pooled features, what the data-proxy
    mapping embeds), ``forward_head`` and ``forward``.
    """

    def __init__(
        self,
        dim: int,
        in_channels: int,
        num_classes: int,
        widths: tuple[int, ...],
        blocks_per_stage: int,
        kernel_size: int,
    ) -> None:
        super().__init__()
        if dim not in _CONV:
            raise ValueError(f"dim must be one of {sorted(_CONV)}, got {dim!r}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd int, got {kernel_size!r}")
        if not widths or any(w < 1 for w in widths):
            raise ValueError(f"widths must be positive ints, got {widths!r}")
        if blocks_per_stage < 1:
            raise ValueError(f"blocks_per_stage must be >= 1, got {blocks_per_stage!r}")
        conv, bn = _CONV[dim], _BN[dim]
        self.stem = nn.Sequential(
            conv(in_channels, widths[0], kernel_size, padding=kernel_size // 2, bias=False),
            bn(widths[0]),
            nn.ReLU(inplace=True),
        )
        stages = []
        in_ch = widths[0]
        for index, width in enumerate(widths):
            blocks = []
            for block in range(blocks_per_stage):
                stride = 2 if index > 0 and block == 0 else 1
                blocks.append(_BasicBlock(dim, in_ch, width, kernel_size, stride))
                in_ch = width
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.pool = _POOL[dim](1)
        self.num_features = widths[-1]
        self.fc = nn.Linear(self.num_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Globally pooled penultimate features, shape ``(N, num_features)``."""
        return torch.flatten(self.pool(self.stages(self.stem(x))), 1)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes)`` from :meth:`forward_features`' output."""
        return self.fc(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _bkm_configs() -> tuple[ArchConfig, ...]:
    return tuple(ArchConfig(f"B{b}-K{k}-M{m}", {"B": b, "K": k, "M": m}) for b, k, m in BKM_GRID)


def _bkm_widths(b: int, m: int) -> tuple[int, int, int]:
    """Stage widths (B, B*M/2, B*M): M is the last stage's width relative to B."""
    return (b, b * m // 2, b * m)


_BKM_MEANING = (
    "B = base filters (stem and stage-1 channels); K = kernel size of every convolution "
    "except 1x1 shortcuts; M = multiplier, the last stage's width relative to B: the "
    "three stages have B, B*M/2 and B*M channels, stride 2 at the first block of stages 2 "
    "and 3. Grid B in {8,16,32} x K in {3,5} x M in {2,4}, names 'B{B}-K{K}-M{M}', "
    "ordered by B, then K, then M (Park 2019, Table 1)."
)


def _bkm_space(name: str, input_shape: tuple[int, ...], blocks: int, summary: str) -> SearchSpace:
    dim = len(input_shape) - 1

    def build(config: ArchConfig, num_classes: int) -> ResNet:
        p = config.params
        return ResNet(
            dim=dim,
            in_channels=input_shape[0],
            num_classes=num_classes,
            widths=_bkm_widths(p["B"], p["M"]),
            blocks_per_stage=blocks,
            kernel_size=p["K"],
        )

    return SearchSpace(
        name=name,
        input_shape=input_shape,
        configs=_bkm_configs(),
        builder=build,
        description=f"{summary} {_BKM_MEANING}",
    )


@register_space("resnet1d")
def resnet1d() -> SearchSpace:
    """ResNet for MNIST-1D (input ``(1, 40)``): 3 stages x 2 basic blocks of Conv1d.

    B = base filters, K = kernel size, M = last-stage width relative to B (stages B,
    B*M/2, B*M); the 12-config B/K/M grid of the paper's Table 1, applied to 1D signals.
    """
    return _bkm_space(
        "resnet1d",
        (1, 40),
        blocks=2,
        summary="1D ResNet for MNIST-1D (1 x 40 signals): Conv1d stem + 3 stages x 2 basic "
        "blocks, global average pool, Linear head.",
    )


@register_space("resnet20")
def resnet20() -> SearchSpace:
    """The paper's ResNet20 grid for 32x32 RGB images: 3 stages x 3 basic blocks of Conv2d.

    B = base filters, K = kernel size, M = last-stage width relative to B (stages B,
    B*M/2, B*M); ``B16-K3-M4`` is the classic 16/32/64 ResNet20 (with 1x1 projection
    shortcuts).
    """
    return _bkm_space(
        "resnet20",
        (3, 32, 32),
        blocks=3,
        summary="ResNet20 for 32x32 RGB images (CIFAR): Conv2d stem + 3 stages x 3 basic "
        "blocks, global average pool, Linear head.",
    )
