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
from proxyds.probes import label_prob_entropy

__all__ = ["SelectionContext", "register_selector", "get_selector", "list_selectors", "entropy_bin_weights",
           "softmax_entropy", "class_uniform", "score_weights", "ENTROPY_BIN_WIDTH", "BUILD_SELECTORS",
           "DEFAULT_SELECTOR"]

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


#: Selectors ``proxyds build`` can run: ``probe`` is the paper's; the others weigh each train
#: example by its label and the probes' outputs on it (:func:`score_weights`).
BUILD_SELECTORS = ("entropy", "probe", "random", "class-balanced", "easy-soft")

#: What ``proxyds build`` uses unless told otherwise: the best measured (docs/benchmarks.md).
DEFAULT_SELECTOR = "entropy"


def class_uniform(labels: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
    """Weight ``1 / (kept examples of its class)`` on kept examples (all when ``keep`` is None),
    0 elsewhere: every class present gets the same total weight."""
    y = np.asarray(labels, dtype=np.int64)
    keep = np.ones(len(y), bool) if keep is None else np.asarray(keep, bool)
    counts = np.bincount(y[keep], minlength=int(y.max()) + 1 if len(y) else 0).astype(np.float64)
    w = np.zeros(len(y))
    w[keep] = 1.0 / counts[y[keep]]
    return w


def score_weights(name: str, labels: np.ndarray, true_prob: np.ndarray, entropy: np.ndarray) -> np.ndarray:
    """Weights of the build selector ``name`` (not ``probe``, which maps reference importance)
    from every usable train example's label (N,) and every probe's true-label probability and
    softmax entropy ((k, N); the last probe is the upper one, the most expensive by MACs)."""
    labels = np.asarray(labels)
    true_prob, entropy = np.atleast_2d(true_prob), np.atleast_2d(entropy)
    if true_prob.shape[1:] != labels.shape or entropy.shape != true_prob.shape:
        raise ValueError(f"labels {labels.shape}, true_prob {true_prob.shape} and entropy {entropy.shape} "
                         "must cover the same examples")
    if name == "random":
        return np.ones(len(labels))
    if name == "class-balanced":
        return class_uniform(labels)
    if name == "entropy":
        return entropy_bin_weights(entropy[-1])
    if name == "easy-soft":
        return class_uniform(labels) * true_prob.mean(0)
    raise ValueError(f"selector must be one of {', '.join(BUILD_SELECTORS)} for a build (got {name!r})")


@register_selector("random")
def random_selector(ctx: SelectionContext) -> np.ndarray:
    """Uniform: every example weight 1, so the seeded draw is a plain random subset."""
    return np.ones(len(ctx.y_train), dtype=np.float64)


@register_selector("class-balanced")
def class_balanced(ctx: SelectionContext) -> np.ndarray:
    """Equal total weight per class present, uniform within a class (weight 1 / class count)."""
    return class_uniform(ctx.y_train.numpy())


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
    """Entropy (nats) of each row's softmax, in float64."""
    return label_prob_entropy(torch.as_tensor(np.asarray(logits, dtype=np.float64)))[1].numpy()


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


# --- committee selectors (issue 8) ------------------------------------------------------------
# Measured and removed (docs/benchmarks-selectors.md has their numbers; their code is in commit
# 50c5dbc): easy (class-balanced easiest half), drop-hard (all but the hardest 20%), ccs
# (coverage-centric strata, Zheng et al. 2023) and entropy-cb (entropy bins within each class).

#: Probes of the committee selectors: this many configs spread over the space by MACs.
COMMITTEE = 3


def committee_true_prob(ctx: SelectionContext, k: int = COMMITTEE) -> np.ndarray:
    """``(k, n_train)``: every train example's softmax probability of its own label under each of
    the space's ``k`` probes (spread by MACs, trained on the full train split)."""
    rows = []
    for c in ctx.space.probes(k, ctx.num_classes):
        logits, _ = ctx.predict(ctx.trained(c), ctx.x_train)
        rows.append(label_prob_entropy(torch.as_tensor(logits, dtype=torch.float64), ctx.y_train)[0].numpy())
    return np.stack(rows)


@register_selector("easy-soft")
def easy_soft_selector(ctx: SelectionContext) -> np.ndarray:
    """Easy examples, softly (after Shleifer & Prokop 2019): class-balanced, each example weighted
    by its mean true-label probability under 3 probes spread by MACs."""
    p = committee_true_prob(ctx)
    ctx.notes["easy-soft"] = {"true_prob_quantiles": np.quantile(p.mean(0), [0, .25, .5, .75, 1]).tolist()}
    return score_weights("easy-soft", ctx.y_train.numpy(), p, np.zeros_like(p))


@register_selector("entropy-committee")
def entropy_committee_selector(ctx: SelectionContext, k: int = COMMITTEE) -> np.ndarray:
    """Na et al.'s entropy-bin weights over the mean softmax entropy of 3 probes spread by MACs."""
    ents = [softmax_entropy(ctx.predict(ctx.trained(c), ctx.x_train)[0]) for c in ctx.space.probes(k, ctx.num_classes)]
    return entropy_bin_weights(np.mean(ents, axis=0))
