"""``proxyds build --dry-run``: what a build would do, resolved by the build's own plan and scan
code, without training a probe or writing anything.

The scan reads both splits (read-only; a scan the work dir already caches is reused, and a new
one is not saved), so the counts are the ones the build will see. OUT is checked as the build
checks it (a writable location outside every input) but not created. What the probes will
score is unknown before they are trained, so the label-reduction decision gives the number of
classes the rule keeps, not which ones.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from proxyds.config import BuildConfig
from proxyds.pipeline.cache import StageCache
from proxyds.pipeline.plan import input_paths, resolve
from proxyds.pipeline.probes import pick_device, resolve_precision
from proxyds.pipeline.scan import cached_scan, class_names
from proxyds.pipeline.score import load_probe
from proxyds.pipeline.summary import probe_roles
from proxyds.pipeline.write import reference_split_name
from proxyds.presets import cache_dir
from proxyds.selection.labels import reduce_labels
from proxyds.selection.sampling import proxy_size
from proxyds.selection.selectors import get_selector
from proxyds.sinks.atomic import check_output_dir
from proxyds.sinks.shards import even_shards

__all__ = ["plan_build", "TRAINING_MACS_FACTOR"]

#: A training step costs about three forward passes (forward, and a backward twice as costly).
TRAINING_MACS_FACTOR = 3


class _ReadOnlyCache(StageCache):
    """The work dir's cache, read but never written: a dry run leaves no trace."""

    def save(self, stage, key, arrays, meta=None) -> None:
        return None


def plan_build(config: BuildConfig) -> dict:
    """What ``build(config)`` would do: splits and counts, classes, probes and their MACs,
    the label-reduction decision, the estimated compute and the output's shards (a dict that
    ``json.dumps`` takes). Raises what the build would raise before training."""
    if not isinstance(config, BuildConfig):
        raise ValueError(f"plan_build takes a BuildConfig (got {type(config).__name__})")
    if config.out.exists() and not config.overwrite:
        raise FileExistsError(f"output directory {config.out} exists; pass --overwrite to replace it")
    device = pick_device(config.device)
    precision = resolve_precision(device, config.precision)
    get_selector(config.selector)
    cache = _ReadOnlyCache(config.workdir or cache_dir() / "work")
    plan = resolve(config)
    check_output_dir(config.out, overwrite=config.overwrite, inputs=input_paths(plan))
    train_idx, _ = cached_scan(plan, plan.train, "train", cache)
    ref_idx, _ = cached_scan(plan, plan.reference, "reference", cache)
    names = class_names(plan.train.info, plan.reference.info, train_idx, ref_idx, plan.on_error)
    usable, reference = int(train_idx.ok.sum()), int(ref_idx.ok.sum())
    k = proxy_size(config.ratio, usable)
    probes = _probes(config, plan.space, len(names))
    reduction = _reduction(config, train_idx.labels[train_idx.ok], names, k)
    return {
        "dataset": config.dataset, "source": plan.spec, "space": plan.space.name, "device": str(device),
        "precision": precision,
        "selector": config.selector, "ratio": config.ratio, "seed": config.seed,
        "splits": {"train": _split(plan.train, train_idx), "reference": _split(plan.reference, ref_idx)},
        "classes": {"names": list(names), "train": np.bincount(train_idx.labels[train_idx.ok],
                                                               minlength=len(names)).tolist()},
        "selected": k, "probes": probes, "label_reduction": reduction,
        "compute": _compute(config, probes, usable, reference),
        "output": _shards(config, plan.format, k, reference, reduction, reference_split_name(plan.reference)),
    }


def _split(source, index) -> dict:
    return {"split": getattr(source, "split", None), "examples": len(index), "usable": int(index.ok.sum()),
            "shards": len(index.shards), "skipped": index.skipped_counts()}


def _probes(config: BuildConfig, space, num_classes: int) -> list[dict]:
    configs = space.probes(config.probes, num_classes)
    given = dict(config.probe_checkpoints)
    unknown = sorted(set(given) - set(probe_roles(len(configs))))
    if unknown:
        raise ValueError(f"--probe names unknown probes {unknown}; the probes of this build are "
                         f"{probe_roles(len(configs))}")
    for role, c in zip(probe_roles(len(configs)), configs):
        if role in given:  # loaded and shape-checked now, as the build would load it
            load_probe(space.build(c, num_classes), Path(given[role]),
                       f"{role} probe ({space.name} {c.name}, {num_classes} classes)")
    return [{"role": role, "config": c.name, "macs": space.macs(c, num_classes),
             "params": space.params(c, num_classes), "checkpoint": given.get(role)}
            for role, c in zip(probe_roles(len(configs)), configs)]


def _reduction(config: BuildConfig, labels: np.ndarray, names, k: int) -> dict:
    """The rule's decision on the class counts alone (flat scores: which classes the build keeps
    depends on the trained probes, how many does not, but for ``auto``'s pool floor)."""
    r = reduce_labels(config, labels, np.ones(len(labels)), names, k, seed=config.seed)
    present = int((np.bincount(labels, minlength=len(names)) > 0).sum())
    kept = len(r["kept_classes"]) if r["applied"] else present
    if not r["applied"]:
        decision = f"keeps all {present} classes ({r['reason']})"
    elif config.label_reduction == "auto":  # the pool floor depends on which classes rank first: about
        decision = (f"keeps about {kept} of {present} classes ({r['reason'].split('; kept ')[0]}); which ones "
                    f"depends on the probes' scores (the highest-scoring by mean importance)")
    else:
        decision = (f"keeps {kept} of {present} classes (label_reduction {kept}); which ones depends on the "
                    f"probes' scores (the highest-scoring by mean importance)")
    return {"mode": r["mode"], "applied": r["applied"], "classes": present, "kept": kept, "decision": decision}


def _compute(config: BuildConfig, probes: list[dict], usable: int, reference: int) -> dict:
    """Forward MACs: probe training (MACs x train examples x epochs, for the probes not given as
    checkpoints; a cached probe from an earlier build costs nothing) and one scoring pass of
    every probe over both splits."""
    trained = [p for p in probes if p["checkpoint"] is None]
    training = sum(p["macs"] for p in trained) * usable * config.probe_epochs
    scoring = sum(p["macs"] for p in probes) * (usable + reference)
    return {"training_forward_macs": training, "training_macs": TRAINING_MACS_FACTOR * training,
            "scoring_macs": scoring, "total_macs": TRAINING_MACS_FACTOR * training + scoring,
            "probes_trained": [p["role"] for p in trained],
            "training_steps": math.ceil(usable / config.batch_size) * config.probe_epochs * len(trained)}


def _shards(config: BuildConfig, fmt: str, selected: int, reference: int, reduction: dict, ref_name: str) -> dict:
    """Rows and files per output split (both formats on the writers' ``even_shards`` plan); with
    label reduction the reference split keeps only the kept classes' examples, so its count is an
    upper bound."""
    return {"format": fmt, "out": str(config.out), "rows_per_shard": config.rows_per_shard,
            "splits": {"train": {"rows": selected, "files": len(even_shards(selected, config.rows_per_shard)),
                                 "exact": True},
                       ref_name: {"rows": reference, "files": len(even_shards(reference, config.rows_per_shard)),
                                  "exact": not reduction["applied"]}}}
