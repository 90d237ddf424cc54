"""Selectors: ways to weight the train split before a proxy is drawn from it.

A selector returns one finite, non-negative weight per train example (**higher = more likely
kept**); the harness then draws the proxy with :func:`proxyds.sampling.draw` (exact size
``proxy_size(ratio, n)``, weighted, without replacement, seeded), so every selector is drawn
the same way and only its weights differ. Register new ones with ``@register_selector``
(the timm ``@register_model`` pattern):

>>> @register_selector("my-selector")
... def my_selector(ctx: SelectionContext) -> np.ndarray:
...     return np.ones(len(ctx.y_train))

Built in: ``probe`` (the paper), ``random``, ``class-balanced`` and ``entropy`` (Na et al.,
IJCAI 2021).
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from proxyds import importance as imp
from proxyds.mapping import NeighborMap

__all__ = ["SelectionContext", "register_selector", "get_selector", "list_selectors", "entropy_bin_weights",
           "softmax_entropy", "ENTROPY_BIN_WIDTH"]

log = logging.getLogger(__name__)

#: Width of the histogram bins over log-entropy (natural log) in the ``entropy`` selector.
ENTROPY_BIN_WIDTH = 0.5


@dataclass
class SelectionContext:
    """What a selector may look at: the train split and reference split A as tensors, the
    search space, and ``trained(config)``, which returns that config trained on the full
    train split (cached by the harness). ``notes`` collects what a selector wants reported."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_ref: torch.Tensor
    y_ref: torch.Tensor
    num_classes: int
    space: object
    trained: Callable[[object], torch.nn.Module]
    predict: Callable[[torch.nn.Module, torch.Tensor], tuple[np.ndarray, np.ndarray]]
    seed: int = 0
    notes: dict = field(default_factory=dict)


Selector = Callable[[SelectionContext], np.ndarray]
_SELECTORS: dict[str, Selector] = {}


def register_selector(name: str) -> Callable[[Selector], Selector]:
    """Decorator registering ``fn(ctx) -> weights`` under ``name`` (once)."""
    if not isinstance(name, str) or not name or any(ch.isspace() for ch in name):
        raise ValueError(f"selector name must be a non-empty string without spaces (got {name!r})")

    def decorator(fn: Selector) -> Selector:
        if name in _SELECTORS:
            raise ValueError(f"selector {name!r} is already registered")
        _SELECTORS[name] = fn
        return fn

    return decorator


def get_selector(name: str) -> Selector:
    """The selector ``name``; an unknown name's error lists the known ones."""
    if name not in _SELECTORS:
        raise ValueError(f"unknown selector {name!r}; known: {', '.join(list_selectors())}")
    return _SELECTORS[name]


def list_selectors(pattern: str = "*") -> list[str]:
    """Sorted names of the registered selectors matching the fnmatch ``pattern``."""
    return [n for n in sorted(_SELECTORS) if fnmatch.fnmatchcase(n, pattern)]


@register_selector("random")
def random_selector(ctx: SelectionContext) -> np.ndarray:
    """Uniform: every example weight 1, so the seeded draw is a plain random subset."""
    return np.ones(len(ctx.y_train), dtype=np.float64)


@register_selector("class-balanced")
def class_balanced(ctx: SelectionContext) -> np.ndarray:
    """Equal total weight per class present, uniform within a class (weight 1 / class count)."""
    y = ctx.y_train.numpy()
    counts = np.bincount(y)
    return 1.0 / counts[y]


@register_selector("probe")
def probe_selector(ctx: SelectionContext, weights=imp.DEFAULT_WEIGHTS, pca_components: int = 64) -> np.ndarray:
    """The paper (Park 2019, Algorithm 1): the space's cheapest and most expensive configs by
    MACs, trained on the full train split, are the probes; each example of reference split A
    gets its case importance (c1..c4 = 2, 1, 6, 1); every train example inherits the
    importance of its nearest A example in the upper probe's PCA-reduced features."""
    configs = ctx.space.probes(2, ctx.num_classes)
    models = [ctx.trained(c) for c in configs]
    ref_out = [ctx.predict(m, ctx.x_ref) for m in models]
    y_ref = ctx.y_ref.numpy()
    correct = np.stack([logits.argmax(1) == y_ref for logits, _ in ref_out], axis=1)
    acc = correct.mean(0).tolist()
    cases = imp.probe_cases(correct, acc)
    ref_importance = imp.case_importance(cases, weights)
    _, train_feats = ctx.predict(models[1], ctx.x_train)
    nmap = NeighborMap(pca_components, "hnsw", seed=ctx.seed).fit(ref_out[1][1])
    neighbor, _ = nmap.query(train_feats)
    labels_agree = float((ctx.y_train.numpy() == y_ref[neighbor]).mean())
    ctx.notes["probe"] = {
        "probes": {"lower": configs[0].name, "upper": configs[1].name},
        "reference_accuracy": {"lower": acc[0], "upper": acc[1]},
        "cases_on_A": dict(zip(imp.CASE_NAMES, np.bincount(cases - 1, minlength=4).tolist())),
        "neighbour_label_agreement": labels_agree,
    }
    log.info("probe selector: %s", ctx.notes["probe"])
    return ref_importance[neighbor]


def softmax_entropy(logits: np.ndarray) -> np.ndarray:
    """Entropy (nats) of each row's softmax."""
    z = torch.as_tensor(np.asarray(logits, dtype=np.float64))
    logp = torch.log_softmax(z, dim=1)
    return (-(logp.exp() * logp).sum(1)).clamp_min(0).numpy()


def entropy_bin_weights(entropy: np.ndarray, bin_width: float = ENTROPY_BIN_WIDTH, eps: float = 1e-12) -> np.ndarray:
    """Na et al. (2021): histogram the examples by log-entropy in bins of ``bin_width``
    (starting at the smallest value); a bin holding ``count`` examples gets total weight
    ``max_count - count + 1``, split evenly over its examples. Sparse bins (rare entropies)
    are thus favoured and the fullest bin keeps weight 1 in all."""
    if not bin_width > 0:
        raise ValueError(f"bin_width must be > 0 (got {bin_width})")
    e = np.asarray(entropy, dtype=np.float64)
    if e.ndim != 1 or len(e) == 0 or not np.isfinite(e).all() or (e < 0).any():
        raise ValueError("entropy must be a non-empty 1-D array of finite values >= 0")
    loge = np.log(np.maximum(e, eps))
    bins = np.floor((loge - loge.min()) / bin_width).astype(np.int64)
    counts = np.bincount(bins)
    bin_weight = counts.max() - counts + 1
    return bin_weight[bins] / counts[bins]


@register_selector("entropy")
def entropy_selector(ctx: SelectionContext, bin_width: float = ENTROPY_BIN_WIDTH) -> np.ndarray:
    """Na et al. (IJCAI 2021): the upper probe's (most expensive config's) softmax entropy of
    every train example, weighted by :func:`entropy_bin_weights`."""
    upper = ctx.space.probes(2, ctx.num_classes)[1]
    logits, _ = ctx.predict(ctx.trained(upper), ctx.x_train)
    ent = softmax_entropy(logits)
    ctx.notes["entropy"] = {"probe": upper.name, "bin_width": bin_width,
                            "entropy_quantiles": np.quantile(ent, [0, 0.25, 0.5, 0.75, 1]).tolist()}
    return entropy_bin_weights(ent, bin_width)
