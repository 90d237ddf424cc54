"""The pipeline: Algorithm 1 of the paper, end to end, as streaming stages.

source -> scan (keys, labels) -> probes (train or load) -> score reference (cases,
importance, PCA + index) -> score train (nearest reference, batch by batch) -> sample ->
write (atomic OUT, proxy.json last).

Only O(N) small arrays (keys, labels, neighbour index) are held for the train split; the
train examples themselves stream through every pass.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from proxyds import importance as imp
from proxyds import sampling
from proxyds.config import BuildConfig
from proxyds.mapping import NeighborMap
from proxyds.probes import PROBE_HPARAMS, pick_device, score_batch, train_probe
from proxyds.sampling import draw, keep_probabilities, proxy_size
from proxyds.sources import get_preset, open_source
from proxyds.sources.presets import cache_dir
from proxyds.sources.stream import batched, shuffled, to_tensors
from proxyds.spaces import resolve_space

__all__ = ["build", "BuildResult", "resolve", "scan", "SplitIndex"]

log = logging.getLogger(__name__)


@dataclass
class Plan:
    """A build's inputs, resolved from its config (preset defaults filled in)."""

    config: BuildConfig
    spec: str
    train: object
    reference: object
    input_column: str
    space: object
    format: str


@dataclass
class SplitIndex:
    """What one pass over a split learns: keys, labels and shards, in read order."""

    keys: list[str]
    labels: np.ndarray
    shard_ids: np.ndarray
    shards: list[str]

    def __len__(self) -> int:
        return len(self.keys)


@dataclass
class BuildResult:
    out: Path
    summary: dict
    stage_seconds: dict = field(default_factory=dict)


def resolve(config: BuildConfig) -> Plan:
    """Open both splits and fill the preset's defaults into what the config left open."""
    preset = None
    if ":" in config.dataset:
        if config.data is not None:
            raise ValueError("--data is for presets; with a hf:/wds: source, put the path in the source itself")
        spec = config.dataset
    else:
        preset = get_preset(config.dataset)
        spec = preset.locate(config.data)

    def pick(name: str, fallback):
        value = getattr(config, name)
        return value if value is not None else (getattr(preset, name, None) if preset else None) or fallback

    train_split, ref_split = pick("train_split", "train"), pick("reference_split", "test")
    label_column = pick("label_column", None)
    train = open_source(spec, train_split, label_column=label_column, key_column=config.key_column)
    reference = open_source(config.reference or spec, ref_split, label_column=label_column,
                            key_column=config.key_column)
    input_column = pick("input_column", None)
    if input_column is None:
        raise ValueError("--input-column is required for a hf:/wds: source (the field the probes read)")
    space_name = pick("space", None)
    if space_name is None:
        raise ValueError("--space is required for a hf:/wds: source; see `proxyds spaces`")
    fmt = config.format or ("wds" if spec.startswith("wds:") else "parquet")
    return Plan(config, spec, train, reference, input_column, resolve_space(space_name), fmt)


def scan(source, what: str) -> SplitIndex:
    """One pass over a split's labels and keys, checking them as it goes."""
    keys, labels, shard_ids, shards, seen = [], [], [], [], set()
    for ex in tqdm(source, desc=f"scan {what}", unit="ex", leave=False, disable=None):
        if not shards or shards[-1] != ex.shard:
            shards.append(ex.shard)
        where = f"{what} example {ex.key!r} (shard {ex.shard})"
        if ex.label is None:
            raise ValueError(f"{where} has no label ({source.info.label_column!r} missing); pass --label-column")
        if not isinstance(ex.label, (int, np.integer)) or isinstance(ex.label, bool) or ex.label < 0:
            raise ValueError(f"{where} has label {ex.label!r}; labels must be integers >= 0")
        if "." in ex.key or not ex.key:
            raise ValueError(f"{where}: keys must be non-empty and contain no '.'")
        if ex.key in seen:
            raise ValueError(f"{where}: duplicate key {ex.key!r}")
        seen.add(ex.key)
        keys.append(ex.key)
        labels.append(int(ex.label))
        shard_ids.append(len(shards) - 1)
    if not keys:
        raise ValueError(f"the {what} split of {source!r} is empty")
    return SplitIndex(keys, np.asarray(labels, np.int64), np.asarray(shard_ids, np.int32), shards)


def class_names(plan: Plan, train: SplitIndex, ref: SplitIndex) -> tuple[str, ...]:
    """Label names from the source's features, else "0".."C-1"; checks the splits agree."""
    names = plan.train.info.class_names
    ref_names = plan.reference.info.class_names
    if names and ref_names and tuple(names) != tuple(ref_names):
        raise ValueError(f"class names differ between the train and reference splits: {list(names)[:5]}… vs "
                         f"{list(ref_names)[:5]}…")
    num = max(int(train.labels.max()), int(ref.labels.max())) + 1
    if names and num > len(names):
        bad = int(np.argmax(train.labels >= len(names)))
        raise ValueError(f"train example {train.keys[bad]!r} has label {train.labels[bad]}, outside the "
                         f"{len(names)} classes 0..{len(names) - 1}")
    names = tuple(names) or tuple(str(i) for i in range(num))
    missing = sorted(set(np.unique(train.labels).tolist()) - set(np.unique(ref.labels).tolist()))
    if missing:
        raise ValueError(f"classes {[names[c] for c in missing][:10]} occur in train but not in the reference split; "
                         f"their examples could never be mapped to a reference example of their class")
    return names


def _fingerprint(*parts) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(json.dumps(part, sort_keys=True, default=str).encode() if not isinstance(part, bytes) else part)
    return h.hexdigest()


@contextmanager
def _stage(times: dict, name: str):
    start = time.perf_counter()
    log.info("stage %s ...", name)
    yield
    times[name] = round(time.perf_counter() - start, 3)
    log.info("stage %s done in %.1fs", name, times[name])


def _epoch_batches(plan: Plan, batch_size: int, seed: int):
    shape = plan.space.input_shape

    def epoch(e: int):
        stream = shuffled(iter(plan.train), PROBE_HPARAMS["shuffle_buffer"], seed=seed * 1_000_003 + e)
        for batch in batched(stream, batch_size):
            yield to_tensors(batch, plan.input_column, shape)
    return epoch


def train_or_load_probes(plan: Plan, index: SplitIndex, num_classes: int, device) -> tuple[list, list, list]:
    """The k probes (spread over the space by MACs, always the cheapest and the most expensive),
    each from the work dir's cache or trained."""
    cfg, space = plan.config, plan.space
    configs = space.probes(cfg.probes, num_classes)
    data_fp = _fingerprint(plan.spec, index.shards, index.keys, index.labels.tobytes())
    workdir = cfg.workdir or cache_dir() / "work"
    models, paths = [], []
    for role, arch in zip(probe_roles(len(configs)), configs):
        hparams = {"epochs": cfg.probe_epochs, "batch_size": cfg.batch_size, "lr": cfg.lr, "seed": cfg.probe_seed,
                   **{k: PROBE_HPARAMS[k] for k in ("weight_decay", "warmup_steps", "shuffle_buffer")}}
        fp = _fingerprint(data_fp, space.name, arch.name, num_classes, hparams)[:16]
        path = Path(workdir) / "probes" / f"{space.name}-{arch.name}-{fp}.pt"
        torch.manual_seed(cfg.probe_seed)
        model = space.build(arch, num_classes)
        if path.exists():
            log.info("probe %s (%s): loading %s", role, arch.name, path)
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        else:
            train_probe(model, _epoch_batches(plan, cfg.batch_size, cfg.probe_seed),
                        steps_per_epoch=math.ceil(len(index) / cfg.batch_size), epochs=cfg.probe_epochs,
                        lr=cfg.lr, weight_decay=PROBE_HPARAMS["weight_decay"],
                        warmup_steps=PROBE_HPARAMS["warmup_steps"], device=device, desc=f"{role} {arch.name}")
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{id(model)}")
            torch.save({k: v.cpu() for k, v in model.state_dict().items()}, tmp)
            tmp.replace(path)
        models.append(model.to(device).eval())
        paths.append(path)
    return configs, models, paths


def probe_roles(k: int) -> list[str]:
    """Names of k probes in MAC order: lower, probe1, …, upper."""
    return ["lower", *(f"probe{i}" for i in range(1, k - 1)), "upper"]


def score_split(plan: Plan, source, index: SplitIndex, models, device, *, what: str, on_features=None):
    """Every probe's predictions (k, N) over a split; ``on_features(feats)`` sees the upper
    probe's features batch by batch and may return a per-row array, concatenated and returned."""
    preds, outs, pos = [], [], 0
    bar = tqdm(total=len(index), desc=f"score {what}", unit="ex", leave=False, disable=None)
    for batch in batched(iter(source), plan.config.batch_size):
        keys = [ex.key for ex in batch]
        if keys != index.keys[pos:pos + len(keys)]:
            raise RuntimeError(f"{what} split changed while it was read (at position {pos}, key {keys[0]!r}); "
                               f"the source must not change during a build")
        x, _ = to_tensors(batch, plan.input_column, plan.space.input_shape)
        p, feats = score_batch(models, x, feature_model=len(models) - 1, device=device)
        preds.append(p)
        if on_features is not None:
            outs.append(on_features(feats))
        pos += len(batch)
        bar.update(len(batch))
    bar.close()
    return np.concatenate(preds, axis=1), outs


def build(config: BuildConfig) -> BuildResult:
    """Run the whole build; returns where it wrote and the summary printed by the CLI."""
    from proxyds.sinks.output import write_proxy

    times: dict[str, float] = {}
    if config.out.exists() and not config.overwrite:
        raise FileExistsError(f"output directory {config.out} exists; pass --overwrite to replace it")
    device = pick_device(config.device)
    with _stage(times, "scan"):
        plan = resolve(config)
        train_idx, ref_idx = scan(plan.train, "train"), scan(plan.reference, "reference")
        names = class_names(plan, train_idx, ref_idx)
        k = proxy_size(config.ratio, len(train_idx))
    with _stage(times, "probes"):
        probe_cfgs, models, ckpts = train_or_load_probes(plan, train_idx, len(names), device)
    with _stage(times, "score_reference"):
        ref_feats: list[np.ndarray] = []
        ref_preds, _ = score_split(plan, plan.reference, ref_idx, models, device, what="reference",
                                   on_features=ref_feats.append)
        correct = ref_preds.T == ref_idx.labels[:, None]
        accuracy = correct.mean(0).tolist()
        pair_cases = imp.pairwise_cases(correct, accuracy)
        ref_cases = imp.dominant_case(pair_cases)
        ref_importance = imp.pairwise_importance(pair_cases, config.weights)
        nmap = NeighborMap(config.pca_components, config.neighbors, seed=config.probe_seed)
        nmap.fit(np.concatenate(ref_feats))
        del ref_feats
    with _stage(times, "score_train"):
        train_preds, mapped = score_split(plan, plan.train, train_idx, models, device, what="train",
                                          on_features=nmap.query)
        neighbor = np.concatenate([m[0] for m in mapped])
        distance = np.concatenate([m[1] for m in mapped])
    with _stage(times, "sample"):
        importance = ref_importance[neighbor]
        reduction = reduce_labels(config, train_idx.labels, importance, names, k)
        kept = reduction["kept_mask"][train_idx.labels]
        selected = np.zeros(len(train_idx), dtype=bool)
        pool = np.flatnonzero(kept)
        selected[pool[draw([train_idx.keys[i] for i in pool], importance[pool], k, config.seed)]] = True
        label_map = reduction["label_map"]
        manifest = {
            "index": np.arange(len(train_idx)), "key": train_idx.keys,
            "shard": [train_idx.shards[i] for i in train_idx.shard_ids], "label": train_idx.labels,
            "case": ref_cases[neighbor], "importance": importance, "keep_prob": keep_probabilities(importance),
            "neighbor": neighbor, "distance": distance, "selected": selected,
            "proxy_label": np.where(kept, label_map[train_idx.labels], -1),
        }
    summary = _summary(plan, names, probe_cfgs, accuracy, train_preds, train_idx, ref_idx, ref_cases, manifest)
    summary["probe_checkpoints"] = [p.name for p in ckpts]
    summary["label_reduction"] = {k: v for k, v in reduction.items() if k not in ("kept_mask", "label_map")}
    with _stage(times, "write"):
        write_proxy(plan, names, train_idx, ref_idx, manifest, summary, label_map=label_map,
                    kept_classes=reduction["kept_mask"])
    return BuildResult(config.out, summary, times)


def reduce_labels(config: BuildConfig, labels: np.ndarray, importance: np.ndarray, names, k: int) -> dict:
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
            mask = sampling.keep_classes(labels, importance, num, target=max(k, int(round(frac * len(labels)))))
            reason = (f"auto: {k:,} examples over {present} classes is {k / present:.1f} per class "
                      f"< {config.min_per_class}; kept the classes holding {frac:.0%} of the train split")
    elif mode.isdigit():
        mask = sampling.keep_classes(labels, importance, num, num_keep=int(mode))
        reason = f"kept the {int(mode)} highest-scoring classes"
    available = int(mask[labels].sum())
    if available < k:
        raise ValueError(f"label reduction kept {available:,} train examples, fewer than the {k:,} the ratio asks for; "
                         f"keep more classes or lower the ratio")
    label_map = np.full(num, -1, dtype=np.int64)
    label_map[mask] = np.arange(int(mask.sum()))
    applied = not mask.all()
    scores = sampling.class_scores(labels, importance, num)
    return {"mode": mode, "applied": applied, "reason": reason if applied else "not needed" if mode == "auto" else reason,
            "kept_classes": [names[c] for c in np.flatnonzero(mask)],
            "dropped_classes": [names[c] for c in np.flatnonzero(~mask)],
            "class_scores": [round(float(x), 6) if np.isfinite(x) else None for x in scores],
            "kept_mask": mask, "label_map": label_map}


def _counts(values: np.ndarray, n: int, offset: int = 0) -> list[int]:
    return np.bincount(np.asarray(values, np.int64) - offset, minlength=n).tolist()


def _summary(plan, names, probe_cfgs, accuracy, train_preds, train_idx, ref_idx, ref_cases, manifest) -> dict:
    space, sel = plan.space, manifest["selected"]
    train_acc = (train_preds == train_idx.labels[None, :]).mean(1).tolist()
    probes = {role: {"config": c.name, "macs": space.macs(c, len(names)), "params": space.params(c, len(names)),
                     "reference_accuracy": round(accuracy[j], 6), "train_accuracy": round(train_acc[j], 6)}
              for j, (role, c) in enumerate(zip(probe_roles(len(probe_cfgs)), probe_cfgs))}
    case_names = list(imp.CASE_NAMES)
    return {
        "dataset": plan.config.dataset, "source": plan.spec, "space": space.name, "format": plan.format,
        "num_train": len(train_idx), "num_reference": len(ref_idx), "num_selected": int(sel.sum()),
        "class_names": list(names), "probes": probes,
        "probe_ranking": [probe_roles(len(accuracy))[j] for j in sorted(range(len(accuracy)), key=lambda j: (-accuracy[j], -j))],
        "cases": {"names": case_names, "reference": _counts(ref_cases, 4, 1),
                  "train": _counts(manifest["case"], 4, 1), "selected": _counts(manifest["case"][sel], 4, 1)},
        "classes": {"train": _counts(train_idx.labels, len(names)), "reference": _counts(ref_idx.labels, len(names)),
                    "selected": _counts(train_idx.labels[sel], len(names))},
    }
