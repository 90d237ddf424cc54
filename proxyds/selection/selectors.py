"""Selectors: how the usable train examples are weighted before a proxy is drawn from them.

ONE registry serves ``proxyds build`` and ``proxyds evaluate``: a selector is a function
``fn(scores: Scores) -> weights`` returning one finite, non-negative weight per usable train
example (**higher = more likely kept**); the proxy is then drawn with
:func:`proxyds.selection.sampling.draw` (exact size, weighted, without replacement, seeded), so every
selector is drawn the same way and only its weights differ. :class:`Scores` is what the
build's scoring pass measured (the harness computes the same object from its probes).

Register your own with ``@register_selector`` (the timm ``@register_model`` pattern), or pass
``--selector mypkg.sel:my_selector`` (a function taking :class:`Scores`) to build or evaluate:

>>> @register_selector("my-selector")
... def my_selector(scores: Scores) -> np.ndarray:
...     return np.ones(len(scores.labels))

Built in: ``entropy`` (Na et al., IJCAI 2021; the default), ``probe`` (the paper),
``random``, ``class-balanced``, ``easy-soft`` and ``entropy-committee``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from proxyds.config import DEFAULT_SELECTOR
from proxyds.registry import Registry

__all__ = ["Scores", "register_selector", "get_selector", "list_selectors", "select_weights", "entropy_bin_weights",
           "class_uniform", "ENTROPY_BIN_WIDTH", "DEFAULT_SELECTOR", "SELECTORS"]

#: Width of the histogram bins over log-entropy (natural log) in the ``entropy`` selector.
ENTROPY_BIN_WIDTH = 0.5



@dataclass(frozen=True)
class Scores:
    """What the scoring pass measured on the N usable train examples, in split order.

    ``true_prob`` and ``entropy`` are (k, N): every probe's softmax probability of the label
    and softmax entropy (nats), probes sorted by MACs (the last is the upper, most expensive
    one). ``importance`` (N,) is the paper's case importance each example inherits from its
    nearest reference example. ``seed`` is the draw's seed, for selectors that randomise."""

    labels: np.ndarray
    true_prob: np.ndarray
    entropy: np.ndarray
    importance: np.ndarray
    num_classes: int
    seed: int = 0

    def __post_init__(self):
        n = len(self.labels)
        for name in ("true_prob", "entropy"):
            value = np.atleast_2d(np.asarray(getattr(self, name)))
            if value.ndim != 2 or value.shape[1] != n:
                raise ValueError(f"Scores.{name} must be (k probes, {n} examples) (got shape {value.shape})")
            object.__setattr__(self, name, value)
        if np.shape(self.importance) != (n,):
            raise ValueError(f"Scores.importance must have one value per example ({n}), got {np.shape(self.importance)}")


Selector = Callable[[Scores], np.ndarray]
SELECTORS: Registry[Selector] = Registry("selector")
register_selector = SELECTORS.register
list_selectors = SELECTORS.names


def get_selector(spec: str) -> Selector:
    """A registered selector's name, or ``module:attr`` naming a function of :class:`Scores`."""
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"selector must be a registered name or module:attr (got {spec!r})")
    if ":" not in spec:
        return SELECTORS.get(spec)
    module, _, attr = spec.partition(":")
    try:
        fn = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"selector {spec!r}: cannot import {attr!r} from {module!r} ({err})") from err
    if not callable(fn) or isinstance(fn, type):
        raise ValueError(f"selector {spec!r} is a {type(fn).__name__}, not a function taking Scores")
    return fn


def select_weights(spec: str, scores: Scores) -> np.ndarray:
    """The selector's weights, checked: one finite value >= 0 per example, not all zero."""
    w = np.asarray(get_selector(spec)(scores), dtype=np.float64)
    n = len(scores.labels)
    if w.shape != (n,) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"selector {spec!r} must return {n} finite weights >= 0, not all zero "
                         f"(got shape {w.shape})")
    return w


def class_uniform(labels: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
    """Weight ``1 / (kept examples of its class)`` on kept examples (all when ``keep`` is None),
    0 elsewhere: every class present gets the same total weight."""
    y = np.asarray(labels, dtype=np.int64)
    keep = np.ones(len(y), bool) if keep is None else np.asarray(keep, bool)
    counts = np.bincount(y[keep], minlength=int(y.max()) + 1 if len(y) else 0).astype(np.float64)
    w = np.zeros(len(y))
    w[keep] = 1.0 / counts[y[keep]]
    return w


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


@register_selector("random")
def random_selector(scores: Scores) -> np.ndarray:
    """Uniform: every example weight 1, so the seeded draw is a plain random subset."""
    return np.ones(len(scores.labels), dtype=np.float64)


@register_selector("class-balanced")
def class_balanced(scores: Scores) -> np.ndarray:
    """Equal total weight per class present, uniform within a class (weight 1 / class count)."""
    return class_uniform(scores.labels)


@register_selector("probe")
def probe_selector(scores: Scores) -> np.ndarray:
    """The paper (Park 2019, Algorithm 1): each example's case importance (c1..c4 = 2, 1, 6, 1
    by default), inherited from its nearest reference example in the upper probe's features."""
    return np.asarray(scores.importance, dtype=np.float64)


@register_selector("entropy")
def entropy_selector(scores: Scores) -> np.ndarray:
    """Na et al. (IJCAI 2021): the upper probe's softmax entropy of every example, weighted by
    :func:`entropy_bin_weights` (rare confidences, very sure and very unsure, are favoured)."""
    return entropy_bin_weights(scores.entropy[-1])


@register_selector("easy-soft")
def easy_soft_selector(scores: Scores) -> np.ndarray:
    """Easy examples, softly (after Shleifer & Prokop 2019): class-balanced, each example weighted
    by the probes' mean softmax probability of its label."""
    return class_uniform(scores.labels) * scores.true_prob.mean(0)


@register_selector("entropy-committee")
def entropy_committee_selector(scores: Scores) -> np.ndarray:
    """Na et al.'s entropy-bin weights over the probes' mean softmax entropy."""
    return entropy_bin_weights(scores.entropy.mean(0))


# Measured and removed (docs/benchmarks-selectors.md has their numbers; their code is in commit
# 50c5dbc): easy (class-balanced easiest half), drop-hard (all but the hardest 20%), ccs
# (coverage-centric strata, Zheng et al. 2023) and entropy-cb (entropy bins within each class).
