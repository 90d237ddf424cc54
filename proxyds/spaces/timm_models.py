"""A search space of timm models named on the command line: ``--space timm:resnet18,resnet50``.

An optional extra (``pip install 'proxyds[timm]'``): timm is imported only when such a space
is asked for. Each name is a timm architecture (``timm.list_models()``, no pretrained tag
such as ``.a1_in1k``); models come from ``timm.create_model(name, pretrained=False,
num_classes=...)``, so nothing is downloaded, and keep timm's own key names, so a timm
checkpoint of that model loads with ``--probe upper=PATH``. The probes are the cheapest and
the most expensive of the names by multiply-accumulates, as in every space.

The input is ``(3, H, W)`` from timm's ``pretrained_cfg['input_size']`` (224x224 for the
ResNets), which every name must share, or given after ``@``: ``timm:resnet18,resnet50@32``
(convolutional models take any size; a ViT needs its own).

timm's ``forward_features`` returns the unpooled feature map; the probes need the pooled
pre-logit features, so the model's class is swapped for a subclass (same state dict, same
module tree) whose ``forward_features`` is timm's ``forward_head(forward_features(x),
pre_logits=True)`` and whose ``forward_head`` is the classifier (``get_classifier()``).
"""

from __future__ import annotations

import functools
import re

import torch
from torch import nn

from .registry import ArchConfig, SearchSpace

__all__ = ["timm_space", "TIMM_PREFIX"]

#: ``--space`` values starting with this name a timm space.
TIMM_PREFIX = "timm:"
_INSTALL = "pip install 'proxyds[timm]'"
_SPEC = re.compile(r"^(?P<names>[A-Za-z0-9_]+(,[A-Za-z0-9_]+)*)(@(?P<size>[0-9]+))?$")


class PooledTimmModel:
    """Mixin put in front of a timm model's class: timm-style methods over pooled features."""

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled pre-logit features ``(N, num_features)`` (timm's head without its classifier)."""
        return super().forward_head(super().forward_features(x), pre_logits=True)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Logits from :meth:`forward_features`' output: the classifier alone."""
        return self.get_classifier()(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@functools.cache
def _pooled_class(cls: type) -> type:
    return type(f"Pooled{cls.__name__}", (PooledTimmModel, cls), {"__module__": __name__})


def _timm():
    try:
        import timm  # deferred: an optional extra
    except ImportError:
        raise ValueError(f"the timm search space needs timm: {_INSTALL}") from None
    return timm


def _build(config: ArchConfig, num_classes: int) -> nn.Module:
    model = _timm().create_model(config.name, pretrained=False, num_classes=num_classes)
    model.__class__ = _pooled_class(type(model))
    # The pooled pre-logit width: timm's num_features, or head_hidden_size where a head adds layers.
    model.num_features = int(getattr(model, "head_hidden_size", None) or model.num_features)
    return model


def _parse(spec: str) -> tuple[list[str], int | None]:
    match = _SPEC.match(spec) if isinstance(spec, str) else None
    if match is None:
        raise ValueError(f"timm search space {TIMM_PREFIX}{spec}: give comma-separated timm model names "
                         f"without pretrained tags and optionally @SIZE, e.g. {TIMM_PREFIX}resnet18,resnet50 "
                         f"or {TIMM_PREFIX}resnet18,resnet50@32")
    names = match["names"].split(",")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if len(names) < 2 or duplicates:
        raise ValueError(f"timm search space {TIMM_PREFIX}{spec}: needs at least two different model names "
                         f"(the lower and upper probes), got {names}")
    size = int(match["size"]) if match["size"] else None
    if size is not None and size < 1:
        raise ValueError(f"timm search space {TIMM_PREFIX}{spec}: @SIZE must be a positive int, got {size}")
    return names, size


def _input_shape(timm, names: list[str], size: int | None, spec: str) -> tuple[int, int, int]:
    if size is not None:
        return (3, size, size)
    cfgs = {n: timm.get_pretrained_cfg(n) for n in names}
    sizes = {n: tuple(c.input_size) if c is not None and c.input_size else None for n, c in cfgs.items()}
    if None in sizes.values() or len(set(sizes.values())) > 1:
        shown = ", ".join(f"{n} {s}" for n, s in sizes.items())
        raise ValueError(f"timm search space {TIMM_PREFIX}{spec}: the models' input sizes differ ({shown}); "
                         f"give one after @, e.g. {TIMM_PREFIX}{','.join(names)}@224")
    return next(iter(sizes.values()))


@functools.cache
def timm_space(spec: str) -> SearchSpace:
    """The space of timm models ``spec`` names: ``"resnet18,resnet50"`` or ``"resnet18,resnet50@32"``.

    Built once per spec (its MAC counts are kept). Raises ``ValueError`` for a bad spec, an
    unknown name (listing similar ones) or a missing timm (naming the extra to install).
    """
    names, size = _parse(spec)
    timm = _timm()
    for name in names:
        if not timm.is_model(name):
            similar = timm.list_models(f"*{name[:6]}*")[:10]
            raise ValueError(f"timm search space {TIMM_PREFIX}{spec}: {name!r} is not a timm model; "
                             f"similar: {', '.join(similar) or 'none'} (see timm.list_models())")
    shape = _input_shape(timm, names, size, spec)
    return SearchSpace(
        name=f"{TIMM_PREFIX}{spec}",
        input_shape=shape,
        configs=tuple(ArchConfig(n, {}) for n in names),
        builder=_build,
        description=(f"timm models {', '.join(names)} (pretrained=False) for {shape[1]}x{shape[2]} RGB images; "
                     f"features = pooled pre-logits (forward_head(..., pre_logits=True)), head = the classifier"),
    )
