"""A source as ``proxyds build`` reads it, cut for evaluation, and its proxies made by the build.

:func:`open_source_data` resolves and scans both splits with the build's own stages (presets,
``hf:``, ``wds:``; the stage cache of the work dir makes a rerun free) and cuts the held-out
split in two, class-stratified and seeded: **evaluation split B** (every accuracy) and
**reference split A** (the rest), which plays the build's reference split: B's examples are
marked skipped in it, so no probe score, case or importance ever sees them. A source with a
second held-out split (``evaluation_split``, e.g. ImageNet-style ``validation`` and ``test``)
gives B whole instead, and A is the build's reference split, uncut.

:func:`make_proxies` runs the build's stages for one seed (probes trained or loaded, reference
and train scoring passes, then the sample stage once per selector x ratio), so each proxy is the
manifest a user's ``proxyds build --seed s --probe-seed s --selector SEL --ratio R`` would write,
label reduction included; only the copying of OUT is left out. Nothing is held but the build's
O(N) arrays.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from proxyds.harness.settings import SourceSpec
from proxyds.pipeline.cache import StageCache, fingerprint
from proxyds.pipeline.plan import Plan, resolve
from proxyds.pipeline.sample import sample
from proxyds.pipeline.scan import SplitIndex, cached_scan, class_names
from proxyds.pipeline.score import check_probes, score_reference, score_train, train_or_load_probes
from proxyds.presets import stratified_holdout
from proxyds.selection.signal import flat_weights
from proxyds.sinks.atomic import sha256_file

__all__ = ["SourceData", "Proxy", "open_source_data", "make_proxies", "split_reference"]

log = logging.getLogger(__name__)


@dataclass
class SourceData:
    """The scanned splits of a source: ``train``; ``held_out`` (the build's reference split, whole);
    ``reference`` (A: ``held_out`` with B's examples skipped); ``evaluation`` (B: a bool mask over
    ``eval_index``'s positions); ``eval_source`` and ``eval_index``: the split B is read from
    (``held_out`` itself, or the source's evaluation split). ``key`` fingerprints the splits and the cut."""

    plan: Plan
    train: SplitIndex
    train_key: str
    held_out: SplitIndex
    reference: SplitIndex
    evaluation: np.ndarray
    names: tuple[str, ...]
    key: str
    description: dict = field(default_factory=dict)
    eval_source: object = None
    eval_index: SplitIndex | None = None

    def __post_init__(self):
        if self.eval_index is None:  # B is a part of the held-out split
            self.eval_source, self.eval_index = self.plan.reference, self.held_out

    @property
    def num_classes(self) -> int:
        return len(self.names)


@dataclass
class Proxy:
    """One proxy the build drew: its train positions (``selected``), every train example's proxy
    label (``labels``: -1 where not selected; relabelled when label reduction kept fewer classes),
    and ``label_map`` (original class -> proxy class, -1 for a dropped class). ``flat_weights``: the
    selector gave every usable train example the same weight, so the proxy is a plain random subset."""

    selector: str
    ratio: float
    seed: int
    selected: np.ndarray
    labels: np.ndarray
    label_map: np.ndarray
    flat_weights: bool = False

    @property
    def num_classes(self) -> int:
        return int((self.label_map >= 0).sum())

    def key(self) -> str:
        """What a run on this proxy depends on: which examples, and with which labels."""
        positions = np.flatnonzero(self.selected).astype(np.int64)
        return fingerprint(positions.tobytes(), self.labels[positions].astype(np.int64).tobytes())[:16]


def split_reference(held_out: SplitIndex, fraction: float, seed: int) -> tuple[SplitIndex, np.ndarray]:
    """(A, B): B a class-stratified ``fraction`` of the usable held-out examples drawn with ``seed``
    (a bool mask over positions), A a copy of ``held_out`` with B's examples skipped."""
    ok = held_out.ok
    evaluation = np.zeros(len(held_out), dtype=bool)
    evaluation[ok] = stratified_holdout(held_out.labels[ok], fraction, seed=seed)
    # a deep copy, however the index holds its keys and statuses: skipping B in A leaves held_out whole
    arrays = {k: np.array(v, copy=True) for k, v in held_out.to_arrays().items()}
    reference = SplitIndex.from_arrays(arrays, list(held_out.shard_errors))
    for pos in np.flatnonzero(evaluation):
        reference.skip(int(pos), "evaluation split B")
    if not reference.ok.any():
        raise ValueError(f"reference split A is empty: the held-out split has {int(ok.sum())} usable examples; "
                         f"lower --evaluation-fraction ({fraction})")
    return reference, evaluation


def open_source_data(spec: SourceSpec, space: str, workdir: Path, device: str) -> SourceData:
    """Resolve and scan ``spec`` as the build does, and cut its held-out split into A and B (or take
    B whole from ``spec.evaluation_split``)."""
    config = spec.build_config(space, workdir, device)
    plan = resolve(config)
    cache = StageCache(config.workdir)
    train, train_key = cached_scan(plan, plan.train, "train", cache)
    held_out, held_key = cached_scan(plan, plan.reference, "reference", cache)
    names = class_names(plan.train.info, plan.reference.info, train, held_out, plan.on_error)
    split = getattr(plan.reference, "split", "reference")
    if spec.evaluation_split is None:
        reference, evaluation = split_reference(held_out, spec.evaluation_fraction, spec.split_seed)
        eval_source, eval_index = plan.reference, held_out
        key = fingerprint("evaluate-source-v1", train_key, held_key, np.flatnonzero(evaluation).tobytes())[:16]
        b = (f"a class-stratified {spec.evaluation_fraction:g} of the held-out split {split!r}, drawn with seed "
             f"{spec.split_seed} ({{n}} examples): every reported accuracy; disjoint from A")
        a = f"the held-out split {split!r} minus B ({{n}} examples)"
    else:
        eval_source, eval_index, eval_key = _evaluation_split(spec, plan, cache, len(names))
        reference, evaluation = held_out, eval_index.ok.copy()
        key = fingerprint("evaluate-source-v1", train_key, held_key, "evaluation-split", eval_key)[:16]
        b = f"the split {spec.evaluation_split!r} ({{n}} usable examples): every reported accuracy; disjoint from A"
        a = f"the held-out split {split!r} ({{n}} examples)"
    n_a, n_b = int(reference.ok.sum()), int(evaluation.sum())
    description = {
        "dataset": spec.source, "source": plan.spec, "space": plan.space.name,
        "train": f"the build's train split ({int(train.ok.sum())} usable examples); proxies are drawn from it",
        "reference_A": a.format(n=n_a) + ": the build's reference split, scores importance, never an accuracy",
        "evaluation_B": b.format(n=n_b),
        "sizes": {"train": int(train.ok.sum()), "reference_A": n_a, "evaluation_B": n_b},
        "build_settings": {k: v for k, v in spec.build},
    }
    return SourceData(plan, train, train_key, held_out, reference, evaluation, names, key, description,
                      eval_source, eval_index)


def _evaluation_split(spec: SourceSpec, plan: Plan, cache: StageCache, num_classes: int):
    """(source, index, key) of ``spec.evaluation_split``: read from where the reference split is read,
    scanned as the build scans; it must be neither the train nor the reference split, and its labels
    must be classes of the train split."""
    name = spec.evaluation_split
    taken = {"train": getattr(plan.train, "split", None), "reference": getattr(plan.reference, "split", None)}
    for role, used in taken.items():
        if name == used:
            raise ValueError(f"--evaluation-split {name!r} is the {role} split; every accuracy must be measured on "
                             f"a split disjoint from train and reference (the source's other held-out split)")
    other = resolve(replace(plan.config, reference_split=name))
    index, key = cached_scan(plan, other.reference, "evaluation", cache)
    labels = index.labels[index.ok]
    if not len(labels):
        raise ValueError(f"--evaluation-split {name!r} has no usable example")
    if labels.max() >= num_classes:
        raise ValueError(f"--evaluation-split {name!r} has label {int(labels.max())}, but the train split has "
                         f"{num_classes} classes (labels 0..{num_classes - 1})")
    return other.reference, index, key


def make_proxies(data: SourceData, selectors, ratios, seed: int, device) -> tuple[list[Proxy], dict]:
    """The build's proxies of every selector x ratio for ``seed`` (draw seed and probe seed), and
    notes on the probes (configs, reference accuracy on A, label reduction)."""
    base = replace(data.plan.config, seed=seed, probe_seed=seed, selector=selectors[0], ratio=ratios[0])
    plan = replace(data.plan, config=base)
    cache = StageCache(base.workdir)
    probe_cfgs, models, ckpts = train_or_load_probes(plan, data.train, data.train_key, data.num_classes, device)
    probes_key = fingerprint("evaluate-A", data.key, [sha256_file(p) for p in ckpts], base.on_error)
    ref = score_reference(plan, data.reference, models, device, cache, probes_key)
    weak = check_probes(ref, data.reference, probe_cfgs, base.allow_weak_probes)
    train = score_train(plan, data.train, models, device, cache, probes_key, ref.neighbors)
    notes = {"probes": [c.name for c in probe_cfgs], "reference_accuracy": [round(a, 4) for a in ref.accuracy],
             "weak_probes": [w.message() for w in weak]}
    proxies = []
    for selector in selectors:
        for ratio in ratios:
            selection = sample(replace(base, selector=selector, ratio=ratio), data.train, data.names, ref, train)
            m = selection.manifest
            proxies.append(Proxy(selector, ratio, seed, np.asarray(m["selected"], bool),
                                 np.asarray(m["proxy_label"], np.int64),
                                 np.asarray(selection.reduction["label_map"], np.int64),
                                 flat_weights(m["importance"][data.train.ok])))
    return proxies, notes
