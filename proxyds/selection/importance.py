"""Importance of reference examples from the probes' correctness (paper §3, Algorithm 1 step 3).

Convention, everywhere in proxyds: **higher importance = more likely kept**.

With two probes, each reference example falls in one of four cases:

====  ====================  ===========================================================
case  name                  when
====  ====================  ===========================================================
1     both_correct          both probes classify it correctly
2     both_wrong            both probes get it wrong
3     only_better_correct   only the probe with the higher full-data accuracy is correct
4     only_worse_correct    only the probe with the lower full-data accuracy is correct
====  ====================  ===========================================================

Case 3 examples agree with the ranking the probes have on the full data, so they get the
largest weight (paper default c1..c4 = 2, 1, 6, 1); case 4 examples contradict it. The
"better" probe is the one with the higher accuracy on the reference split; on a tie the
probe listed later (by convention the more expensive one) counts as better.

**k > 2 probes.** Every pair of probes (i, j) is ordered by accuracy as above and gives the
example one of the four cases for that pair. The example's importance is the mean of the
case weights over all k(k-1)/2 pairs, so an example that agrees with the probes' ranking
on more pairs is kept more often; with k = 2 there is one pair and this is exactly the
paper's rule. The single ``case`` reported for an example (manifest, counts) is its most
frequent pair case, ties going to the more informative case in the order 3, 4, 2, 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from proxyds.config import DEFAULT_WEIGHTS, validate_weights

__all__ = ["CASE_NAMES", "DEFAULT_WEIGHTS", "probe_cases", "pairwise_cases", "pairwise_importance",
           "dominant_case", "case_importance", "validate_weights"]

CASE_NAMES = ("both_correct", "both_wrong", "only_better_correct", "only_worse_correct")


def probe_cases(correct: np.ndarray, accuracy: Sequence[float]) -> np.ndarray:
    """Case 1..4 of every example from two probes' correctness.

    ``correct`` is a boolean array of shape (N, 2), column j saying whether probe j got the
    example right; ``accuracy`` gives each probe's full-data accuracy, which decides the
    better probe (ties: probe 1). Returns an int8 array of shape (N,) with values 1..4.
    """
    correct = np.asarray(correct)
    if correct.ndim != 2 or correct.shape[1] != 2:
        raise ValueError(f"correct must have shape (N, 2), one column per probe (got {correct.shape})")
    if len(accuracy) != 2:
        raise ValueError(f"accuracy must give 2 probe accuracies (got {len(accuracy)})")
    correct = correct.astype(bool)
    better = 0 if accuracy[0] > accuracy[1] else 1
    b, w = correct[:, better], correct[:, 1 - better]
    cases = np.full(len(correct), 2, dtype=np.int8)
    cases[b & w] = 1
    cases[b & ~w] = 3
    cases[~b & w] = 4
    return cases


def case_importance(cases: np.ndarray, weights: Sequence[float] = DEFAULT_WEIGHTS) -> np.ndarray:
    """Importance (float64) of each example: ``weights[case - 1]``."""
    w = np.asarray(validate_weights(weights), dtype=np.float64)
    cases = np.asarray(cases)
    if cases.size and not np.all(np.isin(cases, (1, 2, 3, 4))):
        bad = cases[~np.isin(cases, (1, 2, 3, 4))].ravel()[:5].tolist()
        raise ValueError(f"cases must be integers 1..4 (got values from {cases.min()} to {cases.max()}, e.g. {bad})")
    return w[cases.astype(np.int64) - 1]


def pairwise_cases(correct: np.ndarray, accuracy: Sequence[float]) -> np.ndarray:
    """Case 1..4 of every example for every pair of k >= 2 probes: int8 array (N, k(k-1)/2).

    Pairs are (i, j) for i < j in probe order; within a pair the better probe is the one
    with the higher accuracy (ties: probe j, the later one), exactly as :func:`probe_cases`.
    """
    correct = np.asarray(correct)
    k = correct.shape[1] if correct.ndim == 2 else 0
    if k < 2 or len(accuracy) != k:
        raise ValueError(f"correct must have shape (N, k>=2) and accuracy k entries (got {correct.shape}, "
                         f"{len(accuracy)} accuracies)")
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    return np.stack([probe_cases(correct[:, [i, j]], [accuracy[i], accuracy[j]]) for i, j in pairs], axis=1)


def pairwise_importance(cases: np.ndarray, weights: Sequence[float] = DEFAULT_WEIGHTS) -> np.ndarray:
    """Mean case weight over probe pairs; ``cases`` (N, P) from :func:`pairwise_cases`."""
    cases = np.asarray(cases)
    return case_importance(cases, weights).reshape(cases.shape).mean(axis=1)


_CASE_PREFERENCE = np.array([3, 4, 2, 1])  # ties in dominant_case go to the first listed


def dominant_case(cases: np.ndarray) -> np.ndarray:
    """Most frequent case over probe pairs per example (N,), ties ordered 3, 4, 2, 1."""
    cases = np.asarray(cases)
    counts = np.stack([(cases == c).sum(axis=1) for c in _CASE_PREFERENCE], axis=1)
    return _CASE_PREFERENCE[counts.argmax(axis=1)].astype(np.int8)
