"""Search spaces: registered grids of architectures, and the probes chosen from them by compute.

>>> from proxyds.spaces import get_space
>>> space = get_space("resnet1d")
>>> lower, upper = space.probes()            # cheapest and most expensive config by MACs
>>> model = space.build(upper, num_classes=10)

Importing this package registers the built-in spaces (``resnet1d``, ``resnet20``); add
your own with ``@register_space("name")`` over a zero-argument factory, or name one in
another module as ``"pkg.module:attr"`` and load it with :func:`resolve_space`.
"""

from . import cnn1d, cnn2d, mlp1d, sampled  # noqa: F401  (register cnn1d, digits-cnn, mlp1d and the sampled spaces)
from .efficientnet import EfficientNetCifar
from .registry import (
    ArchConfig,
    SearchSpace,
    count_macs,
    count_params,
    get_space,
    list_spaces,
    register_space,
    resolve_space,
)
from .resnet import BKM_GRID, ResNet
from .tv_resnet import TorchvisionResNet

__all__ = [
    "ArchConfig",
    "SearchSpace",
    "register_space",
    "get_space",
    "resolve_space",
    "list_spaces",
    "count_macs",
    "count_params",
    "ResNet",
    "BKM_GRID",
    "EfficientNetCifar",
    "TorchvisionResNet",
]
