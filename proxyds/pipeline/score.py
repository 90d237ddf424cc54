"""The probes and the scoring pass: train (or load) the k probes, then run every probe over
the reference split (cases, importance, PCA + index) and the train split (nearest reference,
true-label probability, entropy), batch by batch. Each pass's result is cached in the work dir
under a fingerprint of what it depends on, so a killed build resumes without redoing it."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from proxyds.errors import BadInput, ErrorPolicy
from proxyds.manifest import StatusColumn
from proxyds.pipeline.cache import StageCache, fingerprint
from proxyds.pipeline.loader import SplitLoader, default_workers
from proxyds.pipeline.plan import Plan
from proxyds.pipeline.probes import PROBE_HPARAMS, place_model, resolve_precision, score_batch, train_probe
from proxyds.pipeline.reference import FeatureSpill, reduce_reference
from proxyds.pipeline.scan import SplitIndex
from proxyds.pipeline.summary import probe_roles
from proxyds.presets import cache_dir
from proxyds.progress import progress
from proxyds.selection import importance as imp
from proxyds.selection.mapping import NeighborMap, Projection, pca_sample_size
from proxyds.selection.signal import check_probe_signal, require_probe_signal
from proxyds.sinks.atomic import atomic_write
from proxyds.spaces.checkpoint import load_probe

__all__ = ["SplitScores", "ReferenceScores", "TrainScores", "train_or_load_probes", "load_probe", "score_split",
           "score_reference", "score_train", "check_probes"]

log = logging.getLogger(__name__)


@dataclass
class SplitScores:
    """What one scoring pass over a split's N examples gives, in split order: every probe's
    predicted class (``preds``, (k, N), -1 where not scored), the ``positions`` scored
    (ascending), the per-example ``results`` of ``on_features(feats)`` (a tuple of arrays, one
    row per scored position, or None), and every probe's softmax probability of the label and
    softmax entropy (``true_prob``, ``entropy``: (k, N) float32, NaN where not scored)."""

    preds: np.ndarray
    positions: np.ndarray
    results: tuple | None
    true_prob: np.ndarray
    entropy: np.ndarray


@dataclass
class ReferenceScores:
    """The reference split scored: probe predictions and upper-probe features of the usable
    examples (``usable``: their positions), each probe's accuracy, and per usable example the
    paper's case and importance; ``neighbors`` is the fitted PCA + index over the features."""

    preds: np.ndarray
    usable: np.ndarray
    accuracy: list[float]
    cases: np.ndarray
    importance: np.ndarray
    neighbors: NeighborMap


@dataclass
class TrainScores:
    """The train split scored: predictions, each example's nearest usable reference example
    (``neighbor`` indexes ``ReferenceScores.usable``; -1 where not scored) and its squared
    distance, and every probe's true-label probability and entropy ((k, N))."""

    preds: np.ndarray
    neighbor: np.ndarray
    distance: np.ndarray
    true_prob: np.ndarray
    entropy: np.ndarray


def _loader(plan: Plan, source, index: SplitIndex, what: str, device: torch.device, shuffle_seed: int | None = None,
            usable: np.ndarray | None = None) -> SplitLoader:
    cfg = plan.config
    workers = default_workers(plan.space.input_shape) if cfg.workers is None else cfg.workers
    return SplitLoader(source, index, what, column=plan.input_column, shape=plan.space.input_shape,
                       on_error=plan.on_error, batch_size=cfg.batch_size, workers=workers,
                       shuffle_seed=shuffle_seed, buffer=PROBE_HPARAMS["shuffle_buffer"],
                       shards=plan.world.shards(len(index.shards)), usable=usable, pin_memory=device.type == "cuda")


def _precision_key(plan: Plan, device: torch.device) -> list[str]:
    """What the arithmetic adds to a probe's or a scoring pass's cache key: nothing for fp32 (so a
    work dir from before ``--precision`` existed still serves fp32 builds), else its name, so
    results in fp32 and bf16 are never mixed."""
    precision = resolve_precision(device, plan.config.precision)
    return [] if precision == "fp32" else [precision]


def _epoch_batches(plan: Plan, index: SplitIndex, seed: int, usable: np.ndarray, device: torch.device):
    loader = _loader(plan, plan.train, index, "train", device, shuffle_seed=seed, usable=usable)

    def epoch(e: int):
        for batch in loader.epoch(e):
            if len(batch.positions):
                yield batch.x, torch.from_numpy(index.labels[batch.positions])
    return epoch


def train_or_load_probes(plan: Plan, index: SplitIndex, data_key: str, num_classes: int, device):
    """The k probes (spread over the space by MACs, always the cheapest and the most
    expensive), each from the work dir's cache or trained."""
    cfg, space = plan.config, plan.space
    configs = space.probes(cfg.probes, num_classes)
    workdir = cfg.workdir or cache_dir() / "work"
    precision = resolve_precision(device, cfg.precision)
    hparams = {"epochs": cfg.probe_epochs, "batch_size": cfg.batch_size, "lr": cfg.lr, "seed": cfg.probe_seed,
               **{k: PROBE_HPARAMS[k] for k in ("weight_decay", "warmup_steps", "shuffle_buffer")}}
    roles = probe_roles(len(configs))
    # Every probe streams the examples the scan accepted, whichever probes were trained before
    # (or loaded on a resume): a bad example found while training one probe is skipped in its
    # batch, never taken out of the next probe's stream, so a resumed build trains the same.
    usable = index.ok.copy()
    given = dict(cfg.probe_checkpoints)
    unknown = sorted(set(given) - set(roles))
    if unknown:
        raise ValueError(f"--probe names unknown probes {unknown}; the probes of this build are {roles} "
                         f"({', '.join(f'{r}={c.name}' for r, c in zip(roles, configs))})")
    models, paths = [], []
    for role, arch in zip(roles, configs):
        fp = fingerprint(data_key, space.name, arch.name, num_classes, hparams, *_precision_key(plan, device))[:16]
        path = Path(workdir) / "probes" / f"{space.name}-{arch.name}-{fp}.pt"
        torch.manual_seed(cfg.probe_seed)
        model = space.build(arch, num_classes)
        if role in given:
            path = Path(given[role])
            load_probe(model, path, f"{role} probe ({space.name} {arch.name}, {num_classes} classes)")
        elif path.exists():
            log.info("probe %s (%s): loading %s", role, arch.name, path)
            load_probe(model, path, f"{role} probe ({space.name} {arch.name}, {num_classes} classes)")
        else:
            w = plan.world
            net = place_model(model, device)
            if w.size > 1:
                net = torch.nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda"
                                                                else None)
            train_probe(net, _epoch_batches(plan, index, cfg.probe_seed, usable, device),
                        steps_per_epoch=math.ceil(int(usable.sum()) / (cfg.batch_size * w.size)),
                        epochs=cfg.probe_epochs,
                        lr=cfg.lr, weight_decay=PROBE_HPARAMS["weight_decay"],
                        warmup_steps=PROBE_HPARAMS["warmup_steps"], device=device, desc=f"{role} {arch.name}",
                        precision=precision)
            if w.main:  # contiguous: a checkpoint reads the same whatever layout it was trained in
                state = {k: v.cpu().contiguous() for k, v in model.state_dict().items()}
                atomic_write(path, lambda tmp: torch.save(state, tmp))
            w.barrier()
        models.append(place_model(model, device).eval())
        paths.append(path)
    return configs, models, paths


def score_split(plan: Plan, source, index: SplitIndex, models, device, *, what: str,
                on_features=None) -> SplitScores:
    """One pass of every probe over a split's usable examples (see :class:`SplitScores`). Under
    torchrun each rank scores its shards and the pieces are gathered, so every rank returns
    the same arrays."""
    positions, preds, outs, skips, probs, ents = [], [], [], [], [], []
    precision = resolve_precision(device, plan.config.precision)
    bar = progress(total=int(index.ok.sum()), desc=f"score {what}", unit="ex")
    error = None
    try:
        for batch in _loader(plan, source, index, what, device):
            pos = batch.positions
            skips += [(p, r) for p, _, _, r in batch.bad]
            if len(pos):
                p, feats, tp, ent = score_batch(models, batch.x, feature_model=len(models) - 1, device=device,
                                                labels=index.labels[pos], precision=precision)
                finite = np.isfinite(feats).all(axis=1)
                for q in pos[~finite]:
                    ErrorPolicy.of(plan.on_error)(f"{what} example {index.keys[q]!r}: the probe's features are NaN "
                                                  f"or infinite", hint="")
                    skips.append((q, "non-finite features"))
                positions.append(pos[finite])
                preds.append(p[:, finite])
                probs.append(tp[:, finite])
                ents.append(ent[:, finite])
                if on_features is not None:
                    outs.append(on_features(feats[finite]))
            bar.update(len(batch.positions) + len(batch.bad))
    except BadInput as err:
        error = err
    bar.close()
    plan.world.raise_together(error)
    parts = plan.world.gather((positions, preds, outs, skips, probs, ents))  # [ours] without torchrun
    for rank_skips in (part[3] for part in parts):
        for q, reason in rank_skips:
            index.skip(q, reason)
    pos = np.concatenate([q for part in parts for q in part[0]] or [np.zeros(0, np.int64)])
    order = np.argsort(pos, kind="stable")
    all_preds = np.full((len(models), len(index)), -1, dtype=np.int64)
    true_prob = np.full((len(models), len(index)), np.nan, dtype=np.float32)
    entropy = true_prob.copy()
    if len(pos):
        all_preds[:, pos] = np.concatenate([p for part in parts for p in part[1]], axis=1)
        true_prob[:, pos] = np.concatenate([p for part in parts for p in part[4]], axis=1)
        entropy[:, pos] = np.concatenate([p for part in parts for p in part[5]], axis=1)
    results = None
    if on_features is not None:
        columns = list(zip(*[o for part in parts for o in part[2]]))
        results = tuple(np.concatenate(c)[order] for c in columns) if columns else None
    return SplitScores(all_preds, pos[order], results, true_prob, entropy)


def score_reference(plan: Plan, index: SplitIndex, models, device, cache: StageCache, probes_key: str
                    ) -> ReferenceScores:
    """Score the reference split (or reuse the cached pass) and derive cases and importance.

    Features are reduced as they arrive (:mod:`proxyds.pipeline.reference`): the pass and its
    cache entry hold the fitted PCA and the reduced rows, never the features themselves."""
    cfg = plan.config
    nmap = NeighborMap(cfg.pca_components, cfg.neighbors, seed=cfg.probe_seed)
    key = fingerprint("ref-v2", probes_key, cfg.pca_components, pca_sample_size(cfg.pca_components), cfg.probe_seed,
                      *_precision_key(plan, device))
    hit = cache.load("score-reference", key)
    if hit is None:
        preds, points = _score_reference_pass(plan, index, models, device, nmap)
        projection = {} if nmap.pca_ is None else {"pca_mean": nmap.pca_.mean_, "pca_components": nmap.pca_.components_}
        if plan.world.main:
            cache.save("score-reference", key, {"preds": preds, "points": points, **projection,
                                                **index.status.to_arrays("status")})
    else:
        a = hit[0]
        preds, points = a["preds"], a["points"]
        index.status = StatusColumn.from_arrays(a, "status")
        nmap.set_projection(Projection(a["pca_mean"], a["pca_components"]) if "pca_mean" in a else None)
    usable = np.flatnonzero(index.ok)
    correct = preds[:, usable].T == index.labels[usable, None]
    accuracy = correct.mean(0).tolist()
    pair_cases = imp.pairwise_cases(correct, accuracy)
    return ReferenceScores(preds, usable, accuracy, imp.dominant_case(pair_cases),
                           imp.pairwise_importance(pair_cases, cfg.weights), nmap.fit_index(points))


def _score_reference_pass(plan: Plan, index: SplitIndex, models, device, nmap: NeighborMap):
    """Every probe over the reference split, the upper probe's features spilled to the work dir
    as they arrive; returns the predictions and the reduced features of the usable examples
    (``nmap``'s PCA fitted on their seeded sample)."""
    workdir = plan.config.workdir or cache_dir() / "work"
    with FeatureSpill(Path(workdir) / "tmp", plan.world.rank) as spill:
        scores = score_split(plan, plan.reference, index, models, device, what="reference",
                             on_features=spill.add)
        if not np.array_equal(scores.positions, np.flatnonzero(index.ok)):
            raise RuntimeError("reference features do not line up with the usable reference examples")
        ids = scores.results[0] if scores.results else np.zeros(0, np.int64)
        if not len(ids):
            raise BadInput("no usable reference example is left to map train examples to")
        return scores.preds, reduce_reference(spill, ids, nmap, plan.world)


def score_train(plan: Plan, index: SplitIndex, models, device, cache: StageCache, probes_key: str,
                neighbors: NeighborMap) -> TrainScores:
    """Score the train split (or reuse the cached pass), mapping each example to its nearest
    usable reference example batch by batch: train features are never held whole."""
    cfg = plan.config
    key = fingerprint("train-v3", probes_key, cfg.pca_components, cfg.neighbors, pca_sample_size(cfg.pca_components),
                      *_precision_key(plan, device))
    hit = cache.load("score-train", key)
    if hit is not None:
        a = hit[0]
        index.status = StatusColumn.from_arrays(a, "status")
        return TrainScores(a["preds"], a["neighbor"], a["distance"], a["true_prob"], a["entropy"])
    neighbor = np.full(len(index), -1, dtype=np.int64)
    distance = np.full(len(index), np.nan, dtype=np.float32)
    scores = score_split(plan, plan.train, index, models, device, what="train", on_features=neighbors.query)
    if scores.results is not None:
        neighbor[scores.positions], distance[scores.positions] = scores.results
    result = TrainScores(scores.preds, neighbor, distance, scores.true_prob, scores.entropy)
    if plan.world.main:
        cache.save("score-train", key, {"preds": result.preds, "neighbor": neighbor, "distance": distance,
                                        "true_prob": result.true_prob, "entropy": result.entropy,
                                        **index.status.to_arrays("status")})
    return result


def check_probes(ref: ReferenceScores, index: SplitIndex, configs, allow_weak: bool) -> list:
    """Stop (or with ``allow_weak`` warn loudly) when a probe is not above chance on the
    reference split: its cases, and all importance mapped from them, would be noise."""
    usable = ref.usable
    correct = ref.preds[:, usable].T == index.labels[usable, None]
    names = [f"{role} probe ({c.name})" for role, c in zip(probe_roles(len(configs)), configs)]
    return require_probe_signal(check_probe_signal(correct, index.labels[usable], names), allow_weak=allow_weak)
