"""What a build reports: the summary recorded in proxy.json and printed by ``proxyds build``."""

from __future__ import annotations

import numpy as np

from proxyds.pipeline.card import dataset_name, source_name
from proxyds.recipe import RECIPE_EXAMPLE, RECOMMENDED
from proxyds.selection import importance as imp
from proxyds.selection.signal import flat_weights

__all__ = ["build_summary", "proxy_training", "probe_roles"]


def probe_roles(k: int) -> list[str]:
    """Names of k probes in MAC order: lower, probe1, …, upper."""
    return ["lower", *(f"probe{i}" for i in range(1, k - 1)), "upper"]


def proxy_training(ratio: float) -> dict:
    """The recommended way to train on this proxy (proxyds.recipe.RECOMMENDED), for proxy.json."""
    return {"recipe": RECOMMENDED.to_json(), "text": RECOMMENDED.describe(),
            "example": RECOMMENDED.describe(*RECIPE_EXAMPLE, ratio=ratio)}


def _counts(values: np.ndarray, n: int, offset: int = 0) -> list[int]:
    return np.bincount(np.asarray(values, np.int64) - offset, minlength=n).tolist()


def build_summary(plan, names, probe_cfgs, accuracy, train_preds, train_idx, ref_idx, ref_cases, manifest) -> dict:
    """Counts per case and class, probe accuracies and skips: proxy.json's ``summary``.

    ``selector_weights_flat`` says the selector gave every usable example the same weight (by
    design for ``random``; for any other selector the probes measured nothing), so the proxy
    is a plain random subset: the dataset card says so. ``dataset`` and ``source`` name the input
    without its local path (the card's names); proxy.json's ``config`` keeps the paths as given,
    which a rebuild (``proxyds build --config OUT/proxy.json``) reads."""
    space, sel, ok = plan.space, manifest["selected"], train_idx.ok
    train_acc = (train_preds[:, ok] == train_idx.labels[None, ok]).mean(1).tolist()
    probes = {role: {"config": c.name, "macs": space.macs(c, len(names)), "params": space.params(c, len(names)),
                     "reference_accuracy": round(accuracy[j], 6), "train_accuracy": round(train_acc[j], 6)}
              for j, (role, c) in enumerate(zip(probe_roles(len(probe_cfgs)), probe_cfgs))}
    roles = probe_roles(len(accuracy))
    return {
        "dataset": dataset_name(plan.config.dataset), "source": source_name(plan.spec), "space": space.name, "format": plan.format,
        "num_train": len(train_idx), "num_train_usable": int(ok.sum()), "num_reference": int(ref_idx.ok.sum()),
        "num_selected": int(sel.sum()), "class_names": list(names), "probes": probes,
        "selector_weights_flat": flat_weights(manifest["importance"][ok]),
        "probe_ranking": [roles[j] for j in sorted(range(len(accuracy)), key=lambda j: (-accuracy[j], -j))],
        "cases": {"names": list(imp.CASE_NAMES), "reference": _counts(ref_cases, 4, 1),
                  "train": _counts(manifest["case"][ok], 4, 1), "selected": _counts(manifest["case"][sel], 4, 1)},
        "classes": {"train": _counts(train_idx.labels[ok], len(names)),
                    "reference": _counts(ref_idx.labels[ref_idx.ok], len(names)),
                    "selected": _counts(train_idx.labels[sel], len(names))},
        "skipped": {"train": train_idx.skipped_counts(), "reference": ref_idx.skipped_counts(),
                    "shards": train_idx.shard_errors + ref_idx.shard_errors},
    }
