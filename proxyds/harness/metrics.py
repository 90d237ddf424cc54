"""Ranking metrics: how well accuracies measured on a proxy order configs as the full data does.

Pure functions on arrays. ``full`` is the reference accuracy of each config (usually the mean
over full-data seeds) and ``proxy`` its score on the proxy (accuracy after training on the
proxy, or any zero-cost score such as MACs); both have one entry per config, in the same
order. Higher is better for both.

Ties: Spearman and Kendall use average ranks (scipy). "Top" sets and "ranked first" break
ties by config order (the first of equal scores wins), so results are deterministic.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

__all__ = [
    "pearson",
    "spearman",
    "kendall",
    "top1_kept",
    "topk_overlap",
    "regret",
    "top_half",
    "top_half_spearman",
    "pairwise_agreement",
    "noise_ceiling",
    "paired_difference",
    "DIFFERENCE_BOUNDS",
    "ranking_metrics",
    "summarize",
]


def _pair(full, proxy) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(full, dtype=np.float64)
    p = np.asarray(proxy, dtype=np.float64)
    if f.ndim != 1 or f.shape != p.shape:
        raise ValueError(f"full and proxy must be 1-D arrays of equal length (got {f.shape} and {p.shape})")
    if len(f) < 2:
        raise ValueError(f"need at least 2 configs to compare rankings (got {len(f)})")
    return f, p


def _corr(fn, full, proxy) -> float:
    f, p = _pair(full, proxy)
    if np.ptp(f) == 0 or np.ptp(p) == 0:  # a constant ranking correlates with nothing
        return math.nan
    return float(fn(f, p)[0])


def pearson(full, proxy) -> float:
    """Pearson correlation of the accuracies (the paper's "correlation score")."""
    return _corr(stats.pearsonr, full, proxy)


def spearman(full, proxy) -> float:
    """Spearman rank correlation: 1.0 same order, -1.0 reversed."""
    return _corr(stats.spearmanr, full, proxy)


def kendall(full, proxy) -> float:
    """Kendall tau-b: (concordant - discordant) pairs, normalised; 1.0 same order."""
    return _corr(stats.kendalltau, full, proxy)


def _order(scores: np.ndarray) -> np.ndarray:
    """Indices by score descending; ties keep config order."""
    return np.argsort(-scores, kind="stable")


def top1_kept(full, proxy) -> bool:
    """Whether the config ranked first on the proxy is the best config on the full data."""
    f, p = _pair(full, proxy)
    return bool(f[_order(p)[0]] == f.max())


def topk_overlap(full, proxy, k: int = 3) -> float:
    """Fraction of the full data's top ``k`` configs that are also in the proxy's top ``k``."""
    f, p = _pair(full, proxy)
    if not 1 <= k <= len(f):
        raise ValueError(f"k must be in 1..{len(f)} (got {k})")
    return len(set(_order(f)[:k].tolist()) & set(_order(p)[:k].tolist())) / k


def regret(full, proxy) -> float:
    """Best full accuracy minus the full accuracy of the config the proxy ranks first (>= 0)."""
    f, p = _pair(full, proxy)
    return float(f.max() - f[_order(p)[0]])


def top_half(full) -> np.ndarray:
    """Indices of the better half of the configs by ``full`` (ceil(n/2) of them), best first."""
    f = np.asarray(full, dtype=np.float64)
    return _order(f)[: math.ceil(len(f) / 2)]


def top_half_spearman(full, proxy) -> float:
    """Spearman restricted to the top half of configs by full accuracy: where a search decides."""
    f, p = _pair(full, proxy)
    keep = top_half(f)
    return spearman(f[keep], p[keep])


def pairwise_agreement(full, proxy) -> np.ndarray:
    """Config x config boolean matrix (paper Figure 2): True where the proxy orders the pair
    as the full data does (both strictly the same way, or both tied). The diagonal is True."""
    f, p = _pair(full, proxy)
    return np.sign(f[:, None] - f[None, :]) == np.sign(p[:, None] - p[None, :])


def noise_ceiling(full_by_seed) -> float:
    """Mean Spearman between independent full-data seeds (rows: seeds, columns: configs).

    No proxy can be expected to agree with the full data better than the full data agrees
    with itself when retrained; NaN with fewer than 2 seeds.
    """
    a = np.asarray(full_by_seed, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"full_by_seed must be 2-D (seeds x configs), got shape {a.shape}")
    pairs = list(itertools.combinations(range(len(a)), 2))
    if not pairs:
        return math.nan
    return float(np.mean([spearman(a[i], a[j]) for i, j in pairs]))


#: The range a difference of two values of each metric can take: correlations lie in [-1, 1], so
#: their difference in [-2, 2]; regret (accuracy points as a fraction) in [0, 1], so in [-1, 1].
DIFFERENCE_BOUNDS = {"pearson": (-2.0, 2.0), "spearman": (-2.0, 2.0), "kendall": (-2.0, 2.0),
                     "top_half_spearman": (-2.0, 2.0), "regret": (-1.0, 1.0)}


def paired_difference(a: Sequence[float], b: Sequence[float], confidence: float = 0.95,
                      bounds: tuple[float, float] | None = None) -> dict:
    """Mean of ``a[s] - b[s]`` over paired seeds ``s``, its sample std and a t-interval.

    Returns ``{"mean", "std", "ci": [low, high], "n", "diffs"}``; the interval is NaN with
    fewer than 2 pairs (and has zero width when every difference is equal). With ``bounds``
    (the range the difference can take, e.g. ``DIFFERENCE_BOUNDS["spearman"]``) the interval is
    clipped to it: with few seeds the t-interval is wide and would otherwise claim impossible
    values such as a Spearman difference of -3.4.
    """
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or len(x) == 0:
        raise ValueError(f"a and b must be non-empty 1-D arrays of equal length (got {x.shape}, {y.shape})")
    if bounds is not None and not (len(bounds) == 2 and bounds[0] < bounds[1]):
        raise ValueError(f"bounds must be (low, high) with low < high (got {bounds!r})")
    d = x - y
    n = len(d)
    mean = float(d.mean())
    if n < 2:
        return {"mean": mean, "std": math.nan, "ci": [math.nan, math.nan], "n": n, "diffs": d.tolist()}
    sd = float(d.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = max(low, float(bounds[0])), min(high, float(bounds[1]))
    return {"mean": mean, "std": sd, "ci": [low, high], "n": n, "diffs": d.tolist()}


def ranking_metrics(full, proxy, k: int = 3) -> dict:
    """Every per-ranking metric at once, as a JSON-ready dict."""
    f, p = _pair(full, proxy)
    return {
        "pearson": pearson(f, p),
        "spearman": spearman(f, p),
        "kendall": kendall(f, p),
        "top_half_spearman": top_half_spearman(f, p),
        "top1_kept": float(top1_kept(f, p)),
        f"top{k}_overlap": topk_overlap(f, p, min(k, len(f))),
        "regret": regret(f, p),
        "pair_agreement": float(pairwise_agreement(f, p)[np.triu_indices(len(f), 1)].mean()),
    }


def summarize(values: Sequence[float]) -> dict:
    """``{"mean", "std", "values"}`` over seeds (std with ddof=1; 0.0 for one value)."""
    v = np.asarray(values, dtype=np.float64)
    return {"mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0,
            "values": v.tolist()}
