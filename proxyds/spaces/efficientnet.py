"""EfficientNet-B0 for 32x32 images, and the paper's 12-config r/k/f search space on it.

Park 2019, §4 varies three per-stage lists of EfficientNet-B0 (Tan & Le 2019):

* **r** — repeats, MBConv blocks per stage: r1 = [1,2,2,2,2,3,1], r2 = [1,2,2,3,3,4,1]
  (r2 is B0's own);
* **k** — depthwise kernel size per stage: k1 = [3]*7, k2 = [3,3,5,3,5,5,3] (k2 is B0's own);
* **f** — number of filters: f1 = [18,16,16,24,48,68,116], f2 = [24,16,20,32,64,90,152],
  f3 = [32,16,24,40,80,112,192].

**Reading of the 7-entry filter lists.** B0 has a stem of 32 channels and seven stages of
16, 24, 40, 80, 112, 192 and 320 channels. f3 equals ``[stem, stage 1, ..., stage 6]`` of
B0 exactly, while no reading as "stages 1..7" matches B0 at all (it would give a 192-wide
last stage and a stem outside the list). So the lists are read as ``[stem, stage 1..6]``
and the width of stage 7, which the paper does not list, is scaled with stage 6 the way
B0 relates them: ``320 * f[6] / 192``, rounded to the nearest multiple of 8 (as
EfficientNet's ``round_filters`` does), i.e. 192, 256 and 320 for f1, f2 and f3. The head's
1x1 convolution has ``4 x`` stage 7's width channels (torchvision's EfficientNet rule),
768, 1024 and 1280, so ``r2-k2-f3`` is exactly B0's layer widths, depths and kernels.

**Strides for 32x32 inputs.** B0 downsamples 224 -> 7 (stem stride 2, stage strides
1,2,2,2,1,2,1). Here the stem has stride 1 and the stages keep B0's strides, so the maps
are 32 (stem, stage 1), 16, 8, 4, 4, 2, 2: the head sees a 2x2 map (the common CIFAR
adaptation, as in kuangliu/pytorch-cifar).

Blocks are MBConv (Sandler et al. 2018) as in B0: 1x1 expansion by 6 (none in stage 1,
whose expansion is 1), depthwise kxk convolution with the stage's stride on the first
block, squeeze-and-excitation to ``max(1, in_channels // 4)`` channels, a linear 1x1
projection, and a residual add when stride is 1 and the width is kept; BatchNorm and SiLU
throughout, dropout 0.2 before the classifier, no stochastic depth.

The 12 configs are named ``"r{i}-k{j}-f{l}"`` and ordered as the paper's Table 3: by r,
then k, then f. More repeats, the larger kernels and wider filters each raise the MACs.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .registry import ArchConfig, SearchSpace, register_space

__all__ = [
    "EfficientNetCifar",
    "EFFICIENTNET_REPEATS",
    "EFFICIENTNET_KERNELS",
    "EFFICIENTNET_FILTERS",
    "efficientnet_widths",
]

#: Blocks per stage, by index (the paper's r1, r2).
EFFICIENTNET_REPEATS: dict[int, tuple[int, ...]] = {
    1: (1, 2, 2, 2, 2, 3, 1),
    2: (1, 2, 2, 3, 3, 4, 1),
}
#: Depthwise kernel size per stage (k1, k2).
EFFICIENTNET_KERNELS: dict[int, tuple[int, ...]] = {
    1: (3, 3, 3, 3, 3, 3, 3),
    2: (3, 3, 5, 3, 5, 5, 3),
}
#: The paper's filter lists as printed: [stem, stage 1..6] (f1, f2, f3).
EFFICIENTNET_FILTERS: dict[int, tuple[int, ...]] = {
    1: (18, 16, 16, 24, 48, 68, 116),
    2: (24, 16, 20, 32, 64, 90, 152),
    3: (32, 16, 24, 40, 80, 112, 192),
}

_STRIDES = (1, 2, 2, 2, 1, 2, 1)  # B0's stage strides; the stem has stride 1 on 32x32
_EXPANSIONS = (1, 6, 6, 6, 6, 6, 6)


def efficientnet_widths(filters: tuple[int, ...]) -> tuple[int, tuple[int, ...], int]:
    """``(stem, 7 stage widths, head width)`` from a paper filter list ``[stem, stage 1..6]``.

    Stage 7 is ``320 * f[6] / 192`` rounded to a multiple of 8 (B0's 320 for f3); the
    head is 4 x stage 7 (B0's 1280 for f3).
    """
    if len(filters) != 7 or any(f < 1 for f in filters):
        raise ValueError(f"filters must be 7 positive ints [stem, stage 1..6], got {filters!r}")
    last = 8 * max(1, round(filters[6] * 320 / 192 / 8))
    return filters[0], (*filters[1:], last), 4 * last


def _conv_bn(in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1,
             act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_ch),
    ]
    if act:
        layers.append(nn.SiLU(inplace=True))
    return nn.Sequential(*layers)


class _SqueezeExcite(nn.Module):
    """Channel gating: global pool, 1x1 reduce + SiLU, 1x1 expand + sigmoid, multiply."""

    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, squeeze, 1)
        self.expand = nn.Conv2d(squeeze, channels, 1)
        self.act = nn.SiLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x.mean((2, 3), keepdim=True)
        return x * torch.sigmoid(self.expand(self.act(self.reduce(scale))))


class _MBConv(nn.Module):
    """Mobile inverted bottleneck with squeeze-and-excitation (B0's block)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = in_ch * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(_conv_bn(in_ch, hidden, 1))
        layers += [
            _conv_bn(hidden, hidden, kernel, stride, groups=hidden),
            _SqueezeExcite(hidden, max(1, in_ch // 4)),
            _conv_bn(hidden, out_ch, 1, act=False),
        ]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return out + x if self.residual else out


class EfficientNetCifar(nn.Module):
    """EfficientNet-B0-style network for 32x32 images with per-stage repeats/kernels/widths.

    ``stem`` channels, then 7 MBConv stages (``repeats[i]`` blocks of kernel ``kernels[i]``
    and ``widths[i]`` channels, B0's strides and expansions), a 1x1 conv to ``head``
    channels, global average pooling (``num_features = head``), dropout and a Linear
    classifier. ``forward_features``/``forward_head``/``forward`` follow timm.
    """

    def __init__(
        self,
        num_classes: int,
        stem: int,
        widths: tuple[int, ...],
        repeats: tuple[int, ...],
        kernels: tuple[int, ...],
        head: int,
        in_channels: int = 3,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        for field, values in (("widths", widths), ("repeats", repeats), ("kernels", kernels)):
            if len(values) != len(_STRIDES) or any(v < 1 for v in values):
                raise ValueError(f"{field} must be {len(_STRIDES)} positive ints, got {values!r}")
        if any(k % 2 == 0 for k in kernels):
            raise ValueError(f"kernels must be odd, got {kernels!r}")
        self.stem = _conv_bn(in_channels, stem, 3)
        stages = []
        in_ch = stem
        for width, repeat, kernel, stride, expansion in zip(
            widths, repeats, kernels, _STRIDES, _EXPANSIONS
        ):
            blocks = []
            for index in range(repeat):
                blocks.append(_MBConv(in_ch, width, kernel, stride if index == 0 else 1, expansion))
                in_ch = width
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.head = _conv_bn(in_ch, head, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.num_features = head
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(head, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        # B0's initialisation, as in torchvision's EfficientNet.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                bound = 1.0 / math.sqrt(m.out_features)
                nn.init.uniform_(m.weight, -bound, bound)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Globally pooled head activations, shape ``(N, num_features)``."""
        return torch.flatten(self.pool(self.head(self.stages(self.stem(x)))), 1)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes)`` from :meth:`forward_features`' output (dropout first)."""
        return self.fc(self.dropout(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _configs() -> tuple[ArchConfig, ...]:
    return tuple(
        ArchConfig(f"r{r}-k{k}-f{f}", {"r": r, "k": k, "f": f})
        for r in EFFICIENTNET_REPEATS
        for k in EFFICIENTNET_KERNELS
        for f in EFFICIENTNET_FILTERS
    )


def _build(config: ArchConfig, num_classes: int) -> EfficientNetCifar:
    p = config.params
    stem, widths, head = efficientnet_widths(EFFICIENTNET_FILTERS[p["f"]])
    return EfficientNetCifar(
        num_classes=num_classes,
        stem=stem,
        widths=widths,
        repeats=EFFICIENTNET_REPEATS[p["r"]],
        kernels=EFFICIENTNET_KERNELS[p["k"]],
        head=head,
    )


@register_space("efficientnet_b0_cifar")
def efficientnet_b0_cifar() -> SearchSpace:
    """The paper's EfficientNet-B0 variants for 32x32 RGB images (Park 2019, Table 3).

    r = repeats per stage, k = depthwise kernel per stage, f = filters [stem, stage 1..6]
    (stage 7 and head scaled from stage 6); see the module docstring for the reading.
    """
    return SearchSpace(
        name="efficientnet_b0_cifar",
        input_shape=(3, 32, 32),
        configs=_configs(),
        builder=_build,
        description=(
            "EfficientNet-B0 (MBConv + squeeze-excitation, SiLU, BatchNorm) for 32x32 RGB "
            "images: stem stride 1, B0's stage strides, 2x2 final map. r = repeats per stage "
            "(r1 [1,2,2,2,2,3,1], r2 [1,2,2,3,3,4,1]); k = depthwise kernel per stage (k1 all "
            "3, k2 [3,3,5,3,5,5,3]); f = filters [stem, stage 1..6] (f1 [18,16,16,24,48,68,"
            "116], f2 [24,16,20,32,64,90,152], f3 [32,16,24,40,80,112,192] = B0), stage 7 = "
            "320*f[6]/192 rounded to 8, head = 4 x stage 7. Names 'r{i}-k{j}-f{l}', ordered by "
            "r, then k, then f (Park 2019, Table 3); r2-k2-f3 is B0."
        ),
    )
