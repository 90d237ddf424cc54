"""Label reduction (paper §3.3): which classes a proxy keeps, and how labels are renumbered."""

from __future__ import annotations

import numpy as np

from proxyds.selection.sampling import class_scores, keep_classes

__all__ = ["reduce_labels"]


def reduce_labels(config, labels: np.ndarray, importance: np.ndarray, names, k: int) -> dict:
    """Label reduction (paper §3.3): which classes the proxy keeps and how labels are renumbered.

    ``auto`` reduces when the proxy would average fewer than ``min_per_class`` examples per
    class; it then keeps the highest-scoring classes holding ``label_intermediate`` (default
    2 × ratio) of the train split. ``N`` keeps the N highest-scoring classes. Kept classes are
    renumbered 0..C'-1 in their original order.
    """
    num = len(names)
    present = int((np.bincount(labels, minlength=num) > 0).sum())
    mode, reason = config.label_reduction, "off"
    mask = np.ones(num, dtype=bool)
    if mode == "auto" and k / present < config.min_per_class:
        frac = config.label_intermediate or min(1.0, 2 * config.ratio)
        if frac < 1.0:
            mask = keep_classes(labels, importance, num, target=max(k, int(round(frac * len(labels)))))
            reason = (f"auto: {k:,} examples over {present} classes is {k / present:.1f} per class "
                      f"< {config.min_per_class}; kept the classes holding {frac:.0%} of the train split")
    elif mode.isdigit():
        mask = keep_classes(labels, importance, num, num_keep=int(mode))
        reason = f"kept the {int(mode)} highest-scoring classes"
    available = int(mask[labels].sum())
    if available < k:
        raise ValueError(f"label reduction kept {available:,} train examples, fewer than the {k:,} the ratio asks for; "
                         f"keep more classes or lower the ratio")
    label_map = np.full(num, -1, dtype=np.int64)
    label_map[mask] = np.arange(int(mask.sum()))
    applied = not mask.all()
    if mode == "auto" and not applied:
        reason = "not needed"
    scores = class_scores(labels, importance, num)
    return {"mode": mode, "applied": applied, "reason": reason,
            "kept_classes": [names[c] for c in np.flatnonzero(mask)],
            "dropped_classes": [names[c] for c in np.flatnonzero(~mask)],
            "class_scores": [round(float(x), 6) if np.isfinite(x) else None for x in scores],
            "kept_mask": mask, "label_map": label_map}
