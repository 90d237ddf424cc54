"""torchvision's ImageNet ResNets as a search space (input ``(3, 224, 224)``).

Configs ``resnet18``, ``resnet34`` and ``resnet50``, ordered by MACs (1.8, 3.7 and 4.1
GMACs per 224x224 image). :meth:`SearchSpace.probes` therefore gives ``lower=resnet18``
and ``upper=resnet50``, the cheapest and the most expensive: these are the ImageNet probe
defaults. resnet101 is left out on purpose: it would become the upper probe and double
the cost of the probe training.

Models come from ``torchvision.models.resnetXX(weights=None, num_classes=...)`` (random
initialisation; nothing is downloaded) and are wrapped by :class:`TorchvisionResNet`,
which adopts torchvision's submodules under their own names, so its ``state_dict`` keys
are torchvision's and a torchvision checkpoint loads into it unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from .registry import ArchConfig, SearchSpace, register_space

__all__ = ["TorchvisionResNet", "TV_RESNET_DEPTHS"]

#: Depths in the space, in MAC order.
TV_RESNET_DEPTHS: tuple[int, ...] = (18, 34, 50)


class TorchvisionResNet(nn.Module):
    """A torchvision ``ResNet`` with timm-style ``forward_features``/``forward_head``.

    Features are the output of ``avgpool`` flattened, ``(N, fc.in_features)``
    (512 for resnet18/34, 2048 for resnet50); the head is ``fc``.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        for name, child in net.named_children():
            self.add_module(name, child)
        self.num_features = int(net.fc.in_features)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Globally pooled output of ``layer4``, shape ``(N, num_features)``."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes)`` from :meth:`forward_features`' output."""
        return self.fc(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _build(config: ArchConfig, num_classes: int) -> TorchvisionResNet:
    from torchvision import models  # deferred: importing torchvision costs ~1 s

    factory = getattr(models, f"resnet{config.params['depth']}")
    return TorchvisionResNet(factory(weights=None, num_classes=num_classes))


@register_space("torchvision_resnet")
def torchvision_resnet() -> SearchSpace:
    """torchvision ResNet-18/34/50 for 224x224 RGB images; probes resnet18 and resnet50."""
    return SearchSpace(
        name="torchvision_resnet",
        input_shape=(3, 224, 224),
        configs=tuple(ArchConfig(f"resnet{d}", {"depth": d}) for d in TV_RESNET_DEPTHS),
        builder=_build,
        description=(
            "torchvision ResNet-18/34/50 (weights=None) for 224x224 RGB images (ImageNet), "
            "ordered by MACs; depth = number of layers. Features after avgpool + flatten, "
            "head = fc. probes() gives lower=resnet18, upper=resnet50."
        ),
    )
