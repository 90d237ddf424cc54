"""Signal checks: do the probes and the selector carry any information before it is used?

A build ranks examples (and, with label reduction, classes) by what its probes measured. A
probe at chance on the reference split measures nothing: its cases, and every importance
derived from them, are noise, and a build that goes on ranks classes by noise (issue 15: a
one-epoch probe at exactly 10.0% on ten classes made a build drop eight of them). These are
pure functions of arrays; the pipeline calls them and stops (or, with
``--allow-weak-probes``, warns) on what they report.

Chance is the **majority-class rate** of the reference labels: a probe that always answers
the most frequent class reaches it without learning anything, so on unbalanced data it is the
honest baseline (1 / classes understates it). A probe passes when both hold:

- a one-sided exact binomial test rejects "accuracy <= chance" at ``alpha`` (default 1e-3;
  small, because a build runs this for every probe and a false pass is costly), and
- its accuracy is at least ``margin`` of the way from chance to perfect
  (``accuracy >= chance + margin * (1 - chance)``, default 0.02): on a large reference split
  the test alone would pass a probe a fraction of a point above chance, which is still noise
  for ranking.

A reference split too small for the test to ever pass (even a perfect probe) fails with a
message that says so and how many examples would be needed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["ProbeSignal", "SignalError", "check_probe_signal", "flat_weights", "require_probe_signal",
           "ALPHA", "MARGIN", "WHAT_TO_DO"]

log = logging.getLogger(__name__)

ALPHA = 1e-3
MARGIN = 0.02
WHAT_TO_DO = ("train the probes longer with --probe-epochs N, or pass trained checkpoints with "
              "--probe lower=PATH --probe upper=PATH; --allow-weak-probes to go on anyway")


class SignalError(ValueError):
    """A probe (or a selector) carries no usable signal; the message says which and what to do."""


@dataclass(frozen=True)
class ProbeSignal:
    """One probe's reference accuracy against chance, and whether it passed."""

    probe: str
    accuracy: float
    chance: float
    num_reference: int
    num_correct: int
    p_value: float
    ok: bool
    why: str  # "" when ok, else what failed in words

    def message(self) -> str:
        return (f"probe {self.probe!r} scored {self.accuracy:.2%} on the reference split "
                f"({self.num_correct:,}/{self.num_reference:,}), chance (majority class) is {self.chance:.2%}: "
                f"{self.why}")


def _min_reference_size(chance: float, alpha: float) -> int:
    """Smallest n at which a perfect probe (n of n correct) passes the test: chance**n <= alpha."""
    return math.ceil(math.log(alpha) / math.log(chance)) if 0.0 < chance < 1.0 else 0


def check_probe_signal(correct: np.ndarray, labels: np.ndarray, names: Sequence[str], *, alpha: float = ALPHA,
                       margin: float = MARGIN) -> list[ProbeSignal]:
    """Test each probe's reference accuracy against chance (module docstring); one result per probe.

    ``correct`` is (n_ref, k) booleans — probe j right on reference example i — and ``labels``
    the (n_ref,) reference labels (non-negative class ids) that set chance.
    """
    from scipy.stats import binomtest  # deferred: scipy is only needed when a build checks its probes

    correct = np.asarray(correct)
    labels = np.asarray(labels)
    if correct.ndim != 2 or correct.dtype != bool:
        raise ValueError(f"correct must be a 2-D boolean array (n_ref, probes) (got {correct.dtype} {correct.shape})")
    n, k = correct.shape
    if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer) or (labels < 0).any():
        raise ValueError(f"labels must be {n} non-negative integer class ids, one per row of correct "
                         f"(got {labels.dtype} {labels.shape})")
    if len(names) != k:
        raise ValueError(f"names must name the {k} probes (columns of correct) (got {len(names)} names)")
    if n == 0:
        raise ValueError("the reference split is empty: probe signal cannot be checked")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1) (got {alpha!r})")
    if not 0.0 <= margin < 1.0:
        raise ValueError(f"margin must be in [0, 1) (got {margin!r})")
    chance = float(np.bincount(labels).max() / n)
    need = _min_reference_size(chance, alpha)
    out = []
    for j, name in enumerate(names):
        hits = int(correct[:, j].sum())
        acc = hits / n
        p = 1.0 if chance >= 1.0 else float(binomtest(hits, n, chance, alternative="greater").pvalue)
        if chance >= 1.0:
            why = "the reference split holds a single class, so no accuracy can beat chance; use a reference split with every class"
        elif p > alpha and n < need:
            why = (f"the reference split has {n:,} examples, too few for even a perfect probe to beat chance at "
                   f"alpha={alpha:g} (needs >= {need:,}); use a larger reference split, or {WHAT_TO_DO}")
        elif p > alpha:
            why = f"not above chance (one-sided binomial p={p:.2g} > alpha={alpha:g}); {WHAT_TO_DO}"
        elif acc < chance + margin * (1.0 - chance):
            why = (f"only {acc - chance:+.2%} above chance, under the required margin "
                   f"({margin:g} of the way to 100%: >= {chance + margin * (1.0 - chance):.2%}); {WHAT_TO_DO}")
        else:
            why = ""
        out.append(ProbeSignal(str(name), acc, chance, n, hits, p, not why, why))
    return out


def require_probe_signal(checks: Sequence[ProbeSignal], *, allow_weak: bool = False) -> list[ProbeSignal]:
    """Raise :class:`SignalError` naming every probe that failed; with ``allow_weak`` log a loud
    warning instead and return the failures (empty when all passed)."""
    failed = [c for c in checks if not c.ok]
    if failed and not allow_weak:
        raise SignalError("probes carry no usable signal, importance would be noise:\n  "
                          + "\n  ".join(c.message() for c in failed))
    for c in failed:
        log.warning("WEAK PROBE (going on because --allow-weak-probes was given): %s", c.message())
    return failed


def flat_weights(weights: np.ndarray, *, rtol: float = 1e-12) -> bool:
    """True when every weight is equal within float tolerance: ``ptp(w) <= rtol * max|w|``.

    Flat weights rank nothing (``random`` is flat by design; a signal-based selector that comes
    out flat has measured nothing). Empty or single-element input counts as flat.
    """
    w = np.asarray(weights, dtype=np.float64).ravel()
    if w.size and not np.isfinite(w).all():
        raise ValueError(f"weights must be finite (got {int((~np.isfinite(w)).sum())} non-finite values)")
    if w.size <= 1:
        return True
    return bool(np.ptp(w) <= rtol * np.abs(w).max())
