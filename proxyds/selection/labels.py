"""Label reduction (paper §3.3): which classes a proxy keeps, and how labels are renumbered.

Classes are ranked by their score, the mean importance of their train examples, highest
first; ties, and scores that are flat (every class equal, e.g. ``--selector random``: no class
signal), are broken by a seeded draw, never by class index
(:func:`~proxyds.selection.sampling.rank_classes`).

``auto`` reduces only when the proxy (``k`` examples) would average fewer than
``min_per_class`` examples per present class **and** there are more than ``min_classes``
(default 20) classes. It then keeps :func:`auto_num_classes` of them: ``k // min_per_class``
(as many as can each get ``min_per_class`` examples), but never fewer than ``min_classes``,
never fewer than it takes to hold ``label_intermediate`` (default 2 × ratio) of the train
split — the pool the importance-weighted draw chooses from — and never fewer than 2.

Why this floor: a proxy is only useful for ranking architectures if it keeps the task's
difficulty; dropping most classes of a 10-class task (the old rule kept 1 of 10 at 5% of
10,000, and 2 of 10 at 10% of 4,000 digit images) leaves a task every config solves or none
does (issue 15). The paper applies label reduction to CIFAR-100 and ImageNet, where 20+
classes remain; datasets with few classes (MNIST, CIFAR-10, MNIST-1D) are left whole, and our
benchmarks' measurements without reduction are the ones that beat random. CIFAR-100 at 5% of
50,000 keeps 2,500 // 100 = 25 classes, at 1% the floor of 20.

``N`` keeps the N highest-ranked classes (N >= 2, a ValueError otherwise); ``off`` keeps all.
"""

from __future__ import annotations

import numpy as np

from proxyds.config import MIN_CLASSES
from proxyds.selection.sampling import class_scores, rank_classes

__all__ = ["reduce_labels", "auto_num_classes", "MIN_CLASSES"]


def auto_num_classes(k: int, present: int, *, min_per_class: int, min_classes: int = MIN_CLASSES,
                     pool_classes: int = 0) -> int:
    """How many classes ``auto`` keeps: as many as ``min_per_class`` allows, never fewer than a floor.

    ``clamp(max(k // min_per_class, min_classes, pool_classes, 2), high=present)``, where
    ``pool_classes`` is how many (ranked) classes it takes to hold the intermediate pool the
    draw chooses from. A dataset with ``present <= min_classes`` classes is therefore never
    reduced.
    """
    return int(min(present, max(k // min_per_class, min_classes, pool_classes, 2)))


def _pool_classes(counts: np.ndarray, order: np.ndarray, target: int) -> int:
    """Number of classes, taken in ``order``, that hold at least ``target`` examples."""
    return int(min(len(order), np.searchsorted(np.cumsum(counts[order]), target) + 1))


def reduce_labels(config, labels: np.ndarray, importance: np.ndarray, names, k: int, *,
                  seed: int | None = None) -> dict:
    """Which classes the proxy keeps (the rule: module docstring) and how labels are renumbered:
    kept classes become 0..C'-1 in their original order. ``seed`` (default ``config.seed``)
    breaks ties and draws the classes when the scores are flat.

    Returns ``mode``, ``applied``, ``reason`` (says loudly what was dropped and why),
    ``kept_classes``, ``dropped_classes``, ``class_scores``, ``kept_mask``, ``label_map``,
    ``flat_scores`` and ``ranked_by`` (``"class scores"`` or ``"seeded draw"``).
    """
    seed = int(getattr(config, "seed", 0) if seed is None else seed)
    num = len(names)
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num)
    present = int((counts > 0).sum())
    order, flat = rank_classes(labels, importance, num, seed=seed)
    how = (f"drawn with seed {seed} because the class scores are flat (the selector gives no class signal)" if flat
           else "the highest-scoring by mean importance")
    mode, reason, n = str(config.label_reduction), "off", present
    min_classes = int(getattr(config, "min_classes", MIN_CLASSES))
    if mode == "auto":
        n, reason = _auto(config, k, counts, order, present, min_classes)
        if n < present:
            reason += f"; kept {n} of {present} classes, {how}; DROPPED {present - n}"
    elif mode != "off":
        n = int(mode)
        if n < 2:
            raise ValueError(f"label_reduction must keep at least 2 classes (got {mode!r})")
        if n > present:
            raise ValueError(f"label_reduction {n} asks for more classes than the train split has with examples "
                             f"({present}); use at most {present} or off")
        reason = f"kept {n} of {present} classes, {how}; DROPPED {present - n}"
    mask = np.ones(num, dtype=bool)
    if n < present:
        mask[:] = False
        mask[order[:n]] = True
    available = int(counts[mask].sum())
    if available < k:
        raise ValueError(f"label reduction kept {available:,} train examples, fewer than the {k:,} the ratio asks for; "
                         f"keep more classes or lower the ratio")
    label_map = np.full(num, -1, dtype=np.int64)
    label_map[mask] = np.arange(int(mask.sum()))
    scores = class_scores(labels, importance, num)
    return {"mode": mode, "applied": bool(not mask.all()), "reason": reason,
            "kept_classes": [names[c] for c in np.flatnonzero(mask)],
            "dropped_classes": [names[c] for c in np.flatnonzero(~mask)],
            "class_scores": [round(float(x), 6) if np.isfinite(x) else None for x in scores],
            "kept_mask": mask, "label_map": label_map,
            "flat_scores": bool(flat), "ranked_by": "seeded draw" if flat else "class scores"}


def _auto(config, k: int, counts: np.ndarray, order: np.ndarray, present: int, min_classes: int) -> tuple[int, str]:
    """(classes to keep, reason) for ``auto``; ``present`` when no reduction is needed."""
    per_class, mpc = k / max(present, 1), config.min_per_class
    if per_class >= mpc:
        return present, f"not needed: {k:,} examples over {present} classes is {per_class:.1f} per class >= {mpc}"
    if present <= min_classes:
        return present, (f"not needed: {present} classes <= min_classes {min_classes} (auto reduces only datasets "
                         f"with more classes; {per_class:.1f} examples per class)")
    frac = config.label_intermediate or min(1.0, 2 * config.ratio)
    pool = _pool_classes(counts, order, max(k, int(round(frac * int(counts.sum())))))
    n = auto_num_classes(k, present, min_per_class=mpc, min_classes=min_classes, pool_classes=pool)
    reason = (f"auto: {k:,} examples over {present} classes is {per_class:.1f} per class < {mpc}; "
              f"keeps max({k:,} // {mpc} = {k // mpc}, min_classes {min_classes}, {pool} classes to hold "
              f"{frac:.0%} of the train split) = {n}")
    return n, reason
