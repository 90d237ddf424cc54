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


# --- difficulty-based selectors (issue 8) -----------------------------------------------------

def committee_true_prob(ctx: SelectionContext, k: int = 3) -> tuple[np.ndarray, list[str]]:
    """``(n_train, k)``: each train example's softmax probability of its own label under each of
    the space's ``k`` probes (spread by MACs, trained on the full train split), and their names."""
    configs = ctx.space.probes(k, ctx.num_classes)
    y = ctx.y_train.numpy()
    cols = []
    for c in configs:
        logits, _ = ctx.predict(ctx.trained(c), ctx.x_train)
        logp = torch.log_softmax(torch.as_tensor(logits, dtype=torch.float64), dim=1).numpy()
        cols.append(np.exp(logp[np.arange(len(y)), y]))
    return np.stack(cols, axis=1), [c.name for c in configs]


def _class_uniform(y: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Weight 1 / (kept count of its class) on kept examples, 0 elsewhere: equal total per class."""
    counts = np.bincount(y[keep], minlength=int(y.max()) + 1).astype(np.float64)
    w = np.zeros(len(y))
    w[keep] = 1.0 / counts[y[keep]]
    return w


def _within_class_rank(y: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Each example's rank quantile in (0, 1] within its class, 1 = highest score."""
    q = np.zeros(len(y))
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        q[idx[np.argsort(score[idx], kind="stable")]] = np.arange(1, len(idx) + 1) / len(idx)
    return q


def _difficulty_notes(ctx, name, p, probes, w):
    mean_p = p.mean(1)
    ctx.notes[name] = {"probes": probes, "true_prob_quantiles": np.quantile(mean_p, [0, .25, .5, .75, 1]).tolist(),
                       "kept_mean_true_prob": float((mean_p * w).sum() / w.sum())}


@register_selector("easy")
def easy_selector(ctx: SelectionContext, keep: float = 0.5) -> np.ndarray:
    """Easy examples (Shleifer & Prokop 2019), class-balanced: within each class the ``keep``
    fraction with the highest mean true-label probability under 3 probes; uniform over those."""
    p, probes = committee_true_prob(ctx)
    y = ctx.y_train.numpy()
    w = _class_uniform(y, _within_class_rank(y, p.mean(1)) > 1 - keep)
    _difficulty_notes(ctx, "easy", p, probes, w)
    return w


@register_selector("drop-hard")
def drop_hard_selector(ctx: SelectionContext, drop: float = 0.2) -> np.ndarray:
    """Class-balanced and uniform over all but the hardest ``drop`` fraction of each class (lowest
    mean true-label probability under 3 probes: likely noise or mislabelled)."""
    p, probes = committee_true_prob(ctx)
    y = ctx.y_train.numpy()
    w = _class_uniform(y, _within_class_rank(y, p.mean(1)) > drop)
    _difficulty_notes(ctx, "drop-hard", p, probes, w)
    return w


@register_selector("ccs")
def ccs_selector(ctx: SelectionContext, drop: float = 0.1, bins: int = 20) -> np.ndarray:
    """Coverage-centric (Zheng et al., ICLR 2023): drop the hardest ``drop`` fraction by mean
    committee loss, cut the rest into ``bins`` equal-width loss strata and give every stratum
    the same total weight (uniform within), so easy and hard strata are covered alike."""
    p, probes = committee_true_prob(ctx)
    loss = -np.log(np.clip(p.mean(1), 1e-12, 1.0))
    keep = loss <= np.quantile(loss, 1 - drop)
    edges = np.linspace(loss[keep].min(), loss[keep].max(), bins + 1)
    stratum = np.clip(np.searchsorted(edges, loss, side="right") - 1, 0, bins - 1)
    counts = np.bincount(stratum[keep], minlength=bins).astype(np.float64)
    w = np.where(keep, 1.0 / np.maximum(counts[stratum], 1), 0.0)
    _difficulty_notes(ctx, "ccs", p, probes, w)
    return w


@register_selector("easy-soft")
def easy_soft_selector(ctx: SelectionContext) -> np.ndarray:
    """Class-balanced, each example weighted by its mean true-label probability under 3 probes."""
    p, probes = committee_true_prob(ctx)
    y = ctx.y_train.numpy()
    w = _class_uniform(y, np.ones(len(y), bool)) * p.mean(1)
    _difficulty_notes(ctx, "easy-soft", p, probes, w)
    return w


register_selector("easy-25")(lambda ctx: easy_selector(ctx, keep=0.25))
register_selector("easy-75")(lambda ctx: easy_selector(ctx, keep=0.75))


@register_selector("easy-soft-sq")
def easy_soft_sq_selector(ctx: SelectionContext) -> np.ndarray:
    """Class-balanced, weighted by the squared mean true-label probability under 3 probes."""
    p, probes = committee_true_prob(ctx)
    y = ctx.y_train.numpy()
    w = _class_uniform(y, np.ones(len(y), bool)) * p.mean(1) ** 2
    _difficulty_notes(ctx, "easy-soft-sq", p, probes, w)
    return w


def committee_entropy(ctx: SelectionContext, k: int = 3) -> np.ndarray:
    """Mean softmax entropy of every train example under the space's ``k`` probes."""
    ents = [softmax_entropy(ctx.predict(ctx.trained(c), ctx.x_train)[0]) for c in ctx.space.probes(k, ctx.num_classes)]
    return np.mean(ents, axis=0)


@register_selector("entropy-cb")
def entropy_cb_selector(ctx: SelectionContext) -> np.ndarray:
    """Na et al.'s entropy-bin weights computed within each class, each class's total equal."""
    upper = ctx.space.probes(2, ctx.num_classes)[1]
    ent = softmax_entropy(ctx.predict(ctx.trained(upper), ctx.x_train)[0])
    y = ctx.y_train.numpy()
    w = np.zeros(len(y))
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        wc = entropy_bin_weights(ent[idx])
        w[idx] = wc / wc.sum()
    return w


@register_selector("entropy-committee")
def entropy_committee_selector(ctx: SelectionContext) -> np.ndarray:
    """Na et al.'s entropy-bin weights over the mean entropy of 3 probes (spread by MACs)."""
    return entropy_bin_weights(committee_entropy(ctx))
