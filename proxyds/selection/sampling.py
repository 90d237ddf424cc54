"""Weighted sampling without replacement, exact size, seeded per example key.

Efraimidis & Spirakis (2006): give example i the key ``u_i ** (1 / w_i)`` with u_i uniform
in (0, 1), keep the k largest keys; the result is a weighted draw without replacement with
inclusion probabilities that follow the weights. Here ``u_i`` is a hash of (seed, key), so an
example's draw depends only on the seed and its own key — never on the order examples were
read in, or on which process (rank) read it. The keys are compared in log space
(``log(u) / w``) for numerical range.

Zero-weight examples are taken only after every positive-weight example, uniformly among
themselves (by u), so a draw of k examples always returns exactly k.

Label reduction (paper §3.3): each class is scored by the mean importance of its train
examples (with equal class sizes this ranks classes as the paper's aggregated importance
does); :func:`rank_classes` orders them (ties and flat scores by a seeded draw, never by
class index), :func:`keep_classes` keeps the first ones until they hold a number of examples
(or keeps a fixed number of classes), and the final draw is made among the kept classes'
examples only. How many classes ``auto`` keeps is decided in ``proxyds.selection.labels``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from fractions import Fraction

import numpy as np

__all__ = ["proxy_size", "hash_uniforms", "weighted_topk", "draw", "keep_probabilities", "class_scores",
           "rank_classes", "keep_classes"]


def proxy_size(ratio: float, n: int) -> int:
    """round(ratio * n), halves rounded up; validates ``ratio`` in (0, 1) and a non-empty result."""
    ratio = float(ratio)
    if not 0.0 < ratio < 1.0:  # also rejects NaN
        raise ValueError(f"ratio must be in the open interval (0, 1) (got {ratio})")
    if n <= 0:
        raise ValueError(f"cannot draw a proxy from an empty split (n={n})")
    k = math.floor(Fraction(repr(ratio)) * n + Fraction(1, 2))  # exact: 0.29 * 50 -> 15, not 14
    if k == 0:
        raise ValueError(f"ratio {ratio} of {n} examples rounds to 0; use a ratio >= {0.5 / n:.3g}")
    return k


def hash_uniforms(keys: Sequence[str], seed: int) -> np.ndarray:
    """One uniform in the open interval (0, 1) per key, a pure function of (seed, key)."""
    prefix = f"proxyds-es\0{int(seed)}\0".encode()
    raw = np.fromiter(
        (int.from_bytes(hashlib.blake2b(prefix + k.encode(), digest_size=8).digest(), "little") for k in keys),
        dtype=np.uint64,
        count=len(keys),
    )
    return ((raw >> np.uint64(12)).astype(np.float64) + 0.5) / float(1 << 52)  # in [2^-53, 1 - 2^-53]


def weighted_topk(weights: np.ndarray, k: int, uniforms: np.ndarray) -> np.ndarray:
    """Indices (ascending) of the k examples with the largest Efraimidis–Spirakis keys."""
    w = np.asarray(weights, dtype=np.float64)
    u = np.asarray(uniforms, dtype=np.float64)
    if w.shape != u.shape or w.ndim != 1:
        raise ValueError(f"weights and uniforms must be 1-D of equal length (got {w.shape}, {u.shape})")
    if not np.all(np.isfinite(w)) or (w < 0).any():
        raise ValueError("weights must be finite and >= 0")
    if not 0 < k <= len(w):
        raise ValueError(f"k must be in 1..{len(w)} (got {k})")
    with np.errstate(divide="ignore", over="ignore"):
        score = np.where(w > 0, np.log(u) / np.where(w > 0, w, 1.0), -np.inf)
    # Positive weights first, then score descending, then u descending (zero weights; underflowed scores).
    order = np.lexsort((-u, -score, ~(w > 0)))
    return np.sort(order[:k])


def draw(keys: Sequence[str], weights: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Boolean mask over ``keys``: exactly k selected, weighted, without replacement."""
    mask = np.zeros(len(keys), dtype=bool)
    mask[weighted_topk(weights, k, hash_uniforms(keys, seed))] = True
    return mask


def keep_probabilities(importance: np.ndarray) -> np.ndarray:
    """keep_prob_i = importance_i / sum(importance) (paper Algorithm 1 step 8)."""
    imp = np.asarray(importance, dtype=np.float64)
    total = imp.sum()
    if (imp < 0).any():
        raise ValueError(f"importance must be >= 0 (got {int((imp < 0).sum())} negative values)")
    if not np.isfinite(total) or total <= 0:
        raise ValueError(f"importance must sum to a positive finite number (got {total})")
    return imp / total


def class_scores(labels: np.ndarray, importance: np.ndarray, num_classes: int) -> np.ndarray:
    """Mean importance of each class's examples (float64, -inf for a class with none)."""
    labels = np.asarray(labels, dtype=np.int64)
    total = np.bincount(labels, weights=np.asarray(importance, dtype=np.float64), minlength=num_classes)
    count = np.bincount(labels, minlength=num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), -np.inf)


def rank_classes(labels: np.ndarray, importance: np.ndarray, num_classes: int, *,
                 seed: int = 0) -> tuple[np.ndarray, bool]:
    """Present classes, best first, and whether their scores were flat.

    Classes are ranked by :func:`class_scores`, highest first; ties are broken by a seeded
    random permutation (``np.random.default_rng(seed)``), never by class index. When the scores
    of the present classes are flat (all equal within float tolerance — e.g. the ``random``
    selector, which gives no class signal) the order is that seeded permutation alone, so the
    classes a reduction keeps are a seeded draw, not the first ones by index.
    """
    from proxyds.selection.signal import flat_weights

    scores = class_scores(labels, importance, num_classes)
    present = np.flatnonzero(np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes) > 0)
    tiebreak = np.random.default_rng(seed).permutation(len(present))
    flat = flat_weights(scores[present])
    if flat:
        return present[np.argsort(tiebreak)], True
    return present[np.lexsort((tiebreak, -scores[present]))], False


def keep_classes(labels: np.ndarray, importance: np.ndarray, num_classes: int, *, target: int | None = None,
                 num_keep: int | None = None, seed: int = 0) -> np.ndarray:
    """Boolean mask (num_classes,) of the classes kept by label reduction.

    Classes are taken in :func:`rank_classes` order (highest score first; ties and flat scores
    by a seeded draw). With ``target``, classes are kept in that order until they hold at least
    ``target`` examples; with ``num_keep``, exactly that many classes are kept.
    """
    if (target is None) == (num_keep is None):
        raise ValueError("give exactly one of target (examples) or num_keep (classes)")
    order, _ = rank_classes(labels, importance, num_classes, seed=seed)
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes)
    if num_keep is not None:
        if not 1 <= num_keep <= len(order):
            raise ValueError(f"cannot keep {num_keep} classes: the train split has {len(order)} classes with examples")
        n = num_keep
    else:
        if not 1 <= target <= counts.sum():
            raise ValueError(f"label-reduction target of {target} examples is outside 1..{counts.sum()}")
        n = int(np.searchsorted(np.cumsum(counts[order]), target) + 1)
    mask = np.zeros(num_classes, dtype=bool)
    mask[order[:n]] = True
    return mask
