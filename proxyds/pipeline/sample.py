"""The sample stage, on arrays only: the selector's weights, label reduction, the exact-size
weighted draw, and the manifest that accounts for every original train example."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from proxyds.config import BuildConfig
from proxyds.pipeline.scan import SplitIndex
from proxyds.pipeline.score import ReferenceScores, TrainScores
from proxyds.selection.labels import reduce_labels
from proxyds.selection.sampling import draw, keep_probabilities, proxy_size
from proxyds.selection.selectors import Scores, select_weights
from proxyds.selection.signal import flat_weights

__all__ = ["Selection", "sample"]

log = logging.getLogger(__name__)


@dataclass
class Selection:
    """The drawn proxy: the manifest's columns (one row per original train example), the label
    reduction's decision, and the kept classes that got no example (``empty``)."""

    manifest: dict
    reduction: dict
    empty: list[str]


def sample(config: BuildConfig, index: SplitIndex, names, ref: ReferenceScores, train: TrainScores) -> Selection:
    """Weigh the usable train examples with ``config.selector``, reduce labels, draw
    ``proxy_size(ratio, usable)`` of them (Efraimidis–Spirakis keys hashed from the seed and
    each key) and lay out the manifest. Skipped examples and dropped classes get keep_prob 0."""
    ok = index.ok
    k = proxy_size(config.ratio, int(ok.sum()))
    labels, neighbor = index.labels, train.neighbor
    case = np.zeros(len(index), dtype=np.int8)
    importance = np.zeros(len(index))
    case[ok] = ref.cases[neighbor[ok]]
    scores = Scores(labels[ok], train.true_prob[:, ok], train.entropy[:, ok], ref.importance[neighbor[ok]],
                    len(names), config.seed)
    importance[ok] = select_weights(config.selector, scores)
    if config.selector != "random" and flat_weights(importance[ok]):
        log.warning("SELECTOR %r GAVE EVERY EXAMPLE THE SAME WEIGHT: this proxy is a plain random subset; check "
                    "the probes (proxy.json summary.probes) or choose another --selector", config.selector)
    reduction = reduce_labels(config, labels[ok], importance[ok], names, k, seed=config.seed)
    kept = ok.copy()
    kept[ok] = reduction["kept_mask"][labels[ok]]
    pool = np.flatnonzero(kept)
    selected = np.zeros(len(index), dtype=bool)
    selected[pool[draw([index.keys[i] for i in pool], importance[pool], k, config.seed)]] = True
    empty = [names[c] for c in np.flatnonzero(reduction["kept_mask"]) if not selected[labels == c].any()]
    if empty:
        log.warning("ratio %s leaves %d kept classes without any example: %s%s", config.ratio, len(empty),
                    ", ".join(empty[:20]), " …" if len(empty) > 20 else "")
    proxy_label = np.full(len(index), -1, dtype=np.int64)
    proxy_label[kept] = reduction["label_map"][labels[kept]]
    manifest = {
        "index": np.arange(len(index)), "key": index.keys,
        "shard": [index.shards[i] for i in index.shard_ids], "label": labels,
        "case": case, "importance": importance, "keep_prob": keep_probabilities(np.where(kept, importance, 0.0)),
        "neighbor": np.where(ok, ref.usable[np.maximum(neighbor, 0)], -1), "distance": train.distance,
        "selected": selected, "proxy_label": proxy_label, "status": index.status,
    }
    return Selection(manifest, reduction, empty)
