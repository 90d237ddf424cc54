"""The pipeline: Algorithm 1 of the paper, end to end, as streaming stages.

scan (keys, labels, checks) -> probes (train or load) -> score reference (cases,
importance, PCA + index) -> score train (nearest reference, batch by batch) -> sample ->
write (atomic OUT, proxy.json last).

Only O(N) small arrays (keys, labels, neighbour index) are held for the train split; the
examples themselves stream through every pass. Each stage's result is kept in the work
dir under a fingerprint of its inputs (:mod:`proxyds.pipeline.cache`), so a killed build resumes.
"""

from __future__ import annotations

import logging
import math
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from proxyds.selection import importance as imp
from proxyds.pipeline.cache import StageCache, fingerprint
from proxyds.config import BuildConfig
from proxyds.pipeline.distributed import World, world
from proxyds.selection.labels import reduce_labels
from proxyds.pipeline.loader import SplitLoader, default_workers
from proxyds.selection.mapping import NeighborMap
from proxyds.pipeline.probes import PROBE_HPARAMS, pick_device, score_batch, train_probe
from proxyds.selection.selectors import Scores, get_selector, select_weights
from proxyds.pipeline.summary import build_summary, probe_roles, proxy_training
from proxyds.progress import progress
from proxyds.selection.sampling import draw, keep_probabilities, proxy_size
from proxyds.sinks.atomic import check_output_dir, sha256_file
from proxyds.pipeline.scan import BadInput, SplitIndex, class_names, decode_status, encode_status, scan
from proxyds.presets import get_preset
from proxyds.sources import open_source
from proxyds.presets import cache_dir
from proxyds.spaces import resolve_space

__all__ = ["build", "BuildResult", "resolve", "Plan", "probe_roles"]

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
    world: World = field(default_factory=World)

    @property
    def on_error(self) -> str:
        return self.config.on_error


@dataclass
class BuildResult:
    out: Path
    summary: dict
    stage_seconds: dict = field(default_factory=dict)


def resolve(config: BuildConfig) -> Plan:
    """Open both splits and fill the preset's defaults into what the config left open."""
    located = None
    if ":" in config.dataset:
        if config.data is not None:
            raise ValueError("--data is for presets; with a hf:/wds: source, put the path in the source itself")
        spec = config.dataset
    else:
        preset = get_preset(config.dataset)
        located = preset.locate(config.data)
        spec = located.spec

    def pick(name: str, fallback):
        value = getattr(config, name)
        if value is not None:
            return value
        if name == "space" and located is not None:
            return preset.space
        return getattr(located, name, None) or fallback

    label_column = pick("label_column", None)
    train = open_source(spec, pick("train_split", "train"), label_column=label_column, key_column=config.key_column)
    reference = open_source(config.reference or spec, pick("reference_split", "test"), label_column=label_column,
                            key_column=config.key_column)
    input_column = pick("input_column", None)
    if input_column is None:
        raise ValueError("--input-column is required for a hf:/wds: source (the field the probes read)")
    space_name = pick("space", None)
    if space_name is None:
        raise ValueError("--space is required for a hf:/wds: source; see `proxyds spaces`")
    fmt = config.format or ("wds" if spec.startswith("wds:") else "parquet")
    return Plan(config, spec, train, reference, input_column, resolve_space(space_name), fmt)


@contextmanager
def _stage(times: dict, name: str):
    start = time.perf_counter()
    log.info("stage %s ...", name)
    yield
    times[name] = round(time.perf_counter() - start, 3)
    log.info("stage %s done in %.1fs", name, times[name])


def input_paths(plan: Plan) -> list[str]:
    """The input directories (``hf:DIR``, ``wds:DIR``, a preset's data) and files the build reads:
    OUT must not be, contain or (for a directory) lie inside any of them."""
    paths = []
    for source in (plan.train, plan.reference):
        location = os.path.expanduser(getattr(source, "location", ""))
        if location and os.path.isdir(location):
            paths.append(location)
        paths += list(getattr(source, "files", []))
    return sorted(set(paths))


def _source_key(source, what: str, plan: Plan) -> str | None:
    """Fingerprint of a split's files (path, size, mtime); None when it has no local files."""
    files = getattr(source, "files", [])
    if not files:
        return None
    stats = [(f, st.st_size, st.st_mtime_ns) for f, st in ((f, os.stat(f)) for f in files)]
    return fingerprint("scan-v2", what, stats, source.info.label_column, plan.input_column, plan.on_error,
                       plan.config.key_column, list(plan.space.input_shape))


def cached_scan(plan: Plan, source, what: str, cache: StageCache) -> tuple[SplitIndex, str]:
    key = _source_key(source, what, plan)
    hit = cache.load(f"scan-{what}", key) if key else None
    if hit is not None:
        return SplitIndex.from_arrays(hit[0], hit[1]["shard_errors"]), key
    index = scan(source, what, input_column=plan.input_column, on_error=plan.on_error, world=plan.world,
                 input_shape=plan.space.input_shape)
    key = key or fingerprint("scan", what, index.keys, index.labels.tobytes())
    if plan.world.main:
        cache.save(f"scan-{what}", key, index.to_arrays(), {"shard_errors": index.shard_errors})
    return index, key


def _loader(plan: Plan, source, index: SplitIndex, what: str, shuffle_seed: int | None = None,
            usable: np.ndarray | None = None) -> SplitLoader:
    cfg = plan.config
    workers = default_workers(plan.space.input_shape) if cfg.workers is None else cfg.workers
    return SplitLoader(source, index, what, column=plan.input_column, shape=plan.space.input_shape,
                       on_error=plan.on_error, batch_size=cfg.batch_size, workers=workers,
                       shuffle_seed=shuffle_seed, buffer=PROBE_HPARAMS["shuffle_buffer"],
                       shards=plan.world.shards(len(index.shards)), usable=usable)


def _epoch_batches(plan: Plan, index: SplitIndex, seed: int, usable: np.ndarray):
    loader = _loader(plan, plan.train, index, "train", shuffle_seed=seed, usable=usable)

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
        fp = fingerprint(data_key, space.name, arch.name, num_classes, hparams)[:16]
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
            net = model.to(device)
            if w.size > 1:
                net = torch.nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda"
                                                                else None)
            train_probe(net, _epoch_batches(plan, index, cfg.probe_seed, usable),
                        steps_per_epoch=math.ceil(int(usable.sum()) / (cfg.batch_size * w.size)),
                        epochs=cfg.probe_epochs,
                        lr=cfg.lr, weight_decay=PROBE_HPARAMS["weight_decay"],
                        warmup_steps=PROBE_HPARAMS["warmup_steps"], device=device, desc=f"{role} {arch.name}")
            if w.main:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
                torch.save({k: v.cpu() for k, v in model.state_dict().items()}, tmp)
                os.replace(tmp, path)
            w.barrier()
        models.append(model.to(device).eval())
        paths.append(path)
    return configs, models, paths


def load_probe(model: torch.nn.Module, path: Path, what: str) -> None:
    """Load a state dict saved with torch.save (weights only, never pickle), shape-checked."""
    if not path.is_file():
        raise FileNotFoundError(f"{what}: checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
            state = state["state_dict"]
        model.load_state_dict(state)
    except Exception as err:  # noqa: BLE001 - unpickling and shape errors come as many types
        raise BadInput(f"checkpoint {path} does not fit the {what}: {str(err).splitlines()[0][:300]}") from err


def score_split(plan: Plan, source, index: SplitIndex, models, device, *, what: str, on_features=None):
    """Every probe's prediction (k, N; -1 where skipped) over a split, the positions scored, the
    per-example results of ``on_features(feats)`` (a tuple of arrays, one row per example) as
    arrays in position order over the split's usable examples, and every probe's true-label
    probability and softmax entropy (each (k, N) float32, NaN where skipped). Under torchrun each
    rank scores its shards and the pieces are gathered, so every rank returns the same arrays."""
    positions, preds, outs, skips, probs, ents = [], [], [], [], [], []
    bar = progress(total=int(index.ok.sum()), desc=f"score {what}", unit="ex")
    error = None
    try:
        for batch in _loader(plan, source, index, what):
            pos = batch.positions
            skips += [(p, r) for p, _, _, r in batch.bad]
            if len(pos):
                p, feats, tp, ent = score_batch(models, batch.x, feature_model=len(models) - 1, device=device,
                                                labels=index.labels[pos])
                finite = np.isfinite(feats).all(axis=1)
                for q in pos[~finite]:
                    if plan.on_error == "raise":
                        raise BadInput(f"{what} example {index.keys[q]!r}: the probe's features are NaN or infinite")
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
    return all_preds, pos[order], results, (true_prob, entropy)


def build(config: BuildConfig) -> BuildResult:
    """Run the whole build; returns where it wrote and the summary printed by the CLI."""
    from proxyds.pipeline.write import write_proxy

    times: dict[str, float] = {}
    if config.out.exists() and not config.overwrite:
        raise FileExistsError(f"output directory {config.out} exists; pass --overwrite to replace it")
    device = pick_device(config.device)
    get_selector(config.selector)  # an unknown selector fails now, not after training
    cache = StageCache(config.workdir or cache_dir() / "work")
    w = world(device)
    with _stage(times, "scan"):
        plan = resolve(config)
        plan.world = w
        check_output_dir(config.out, overwrite=config.overwrite, inputs=input_paths(plan))
        train_idx, train_key = cached_scan(plan, plan.train, "train", cache)
        ref_idx, ref_key = cached_scan(plan, plan.reference, "reference", cache)
        names = class_names(plan.train.info, plan.reference.info, train_idx, ref_idx, plan.on_error)
        proxy_size(config.ratio, int(train_idx.ok.sum()))  # fail early on a ratio that rounds to nothing
    with _stage(times, "probes"):
        probe_cfgs, models, ckpts = train_or_load_probes(plan, train_idx, train_key, len(names), device)
    probes_key = fingerprint(train_key, ref_key, [sha256_file(p) for p in ckpts], config.on_error)
    with _stage(times, "score_reference"):
        key = fingerprint("ref", probes_key)
        hit = cache.load("score-reference", key)
        if hit is None:
            ref_preds, scored, out, _ = score_split(plan, plan.reference, ref_idx, models, device, what="reference",
                                                 on_features=lambda f: (f,))
            ref_feats = out[0] if out else np.zeros((0, 1), np.float32)
            if not np.array_equal(scored, np.flatnonzero(ref_idx.ok)):
                raise RuntimeError("reference features do not line up with the usable reference examples")
            if plan.world.main:
                cache.save("score-reference", key, {"preds": ref_preds, "feats": ref_feats,
                                                    **encode_status(ref_idx.status)})
        else:
            ref_preds, ref_feats = hit[0]["preds"], hit[0]["feats"]
            ref_idx.status = decode_status(hit[0])
        ok_ref = np.flatnonzero(ref_idx.ok)
        correct = ref_preds[:, ok_ref].T == ref_idx.labels[ok_ref, None]
        accuracy = correct.mean(0).tolist()
        pair_cases = imp.pairwise_cases(correct, accuracy)
        ref_cases = imp.dominant_case(pair_cases)
        ref_importance = imp.pairwise_importance(pair_cases, config.weights)
        nmap = NeighborMap(config.pca_components, config.neighbors, seed=config.probe_seed).fit(ref_feats)
    with _stage(times, "score_train"):
        key = fingerprint("train-v2", probes_key, config.pca_components, config.neighbors)
        hit = cache.load("score-train", key)
        if hit is None:
            neighbor = np.full(len(train_idx), -1, dtype=np.int64)
            distance = np.full(len(train_idx), np.nan, dtype=np.float32)
            train_preds, scored, out, (true_prob, entropy) = score_split(
                plan, plan.train, train_idx, models, device, what="train", on_features=nmap.query)
            if out is not None:
                neighbor[scored], distance[scored] = out
            if plan.world.main:
                cache.save("score-train", key, {"preds": train_preds, "neighbor": neighbor, "distance": distance,
                                                "true_prob": true_prob, "entropy": entropy,
                                                **encode_status(train_idx.status)})
        else:
            a = hit[0]
            train_preds, neighbor, distance = a["preds"], a["neighbor"], a["distance"]
            true_prob, entropy = a["true_prob"], a["entropy"]
            train_idx.status = decode_status(a)
    with _stage(times, "sample"):
        ok = train_idx.ok
        k = proxy_size(config.ratio, int(ok.sum()))
        case = np.zeros(len(train_idx), dtype=np.int8)
        importance = np.zeros(len(train_idx))
        case[ok] = ref_cases[neighbor[ok]]
        scores = Scores(train_idx.labels[ok], true_prob[:, ok], entropy[:, ok], ref_importance[neighbor[ok]],
                        len(names), config.seed)
        importance[ok] = select_weights(config.selector, scores)
        reduction = reduce_labels(config, train_idx.labels[ok], importance[ok], names, k)
        kept = ok.copy()
        kept[ok] = reduction["kept_mask"][train_idx.labels[ok]]
        pool = np.flatnonzero(kept)
        selected = np.zeros(len(train_idx), dtype=bool)
        selected[pool[draw([train_idx.keys[i] for i in pool], importance[pool], k, config.seed)]] = True
        empty = [names[c] for c in np.flatnonzero(reduction["kept_mask"])
                 if not selected[train_idx.labels == c].any()]
        if empty:
            log.warning("ratio %s leaves %d kept classes without any example: %s%s", config.ratio, len(empty),
                        ", ".join(empty[:20]), " …" if len(empty) > 20 else "")
        proxy_label = np.full(len(train_idx), -1, dtype=np.int64)
        proxy_label[kept] = reduction["label_map"][train_idx.labels[kept]]
        manifest = {
            "index": np.arange(len(train_idx)), "key": train_idx.keys,
            "shard": [train_idx.shards[i] for i in train_idx.shard_ids], "label": train_idx.labels,
            "case": case, "importance": importance, "keep_prob": keep_probabilities(np.where(kept, importance, 0.0)),
            "neighbor": np.where(ok, ok_ref[np.maximum(neighbor, 0)], -1), "distance": distance,
            "selected": selected, "proxy_label": proxy_label, "status": train_idx.status,
        }
    summary = build_summary(plan, names, probe_cfgs, accuracy, train_preds, train_idx, ref_idx, ref_cases, manifest)
    summary["selector"] = config.selector
    summary["proxy_training"] = proxy_training(config.ratio)
    summary["probe_checkpoints"] = [p.name for p in ckpts]
    summary["label_reduction"] = {k: v for k, v in reduction.items() if k not in ("kept_mask", "label_map")}
    summary["classes_without_examples"] = empty
    with _stage(times, "write"):
        ref_keep = ref_idx.ok.copy()
        ref_keep[ref_keep] = reduction["kept_mask"][ref_idx.labels[ref_keep]]
        if w.main:  # the other ranks hold the same arrays; one writer keeps OUT atomic
            write_proxy(plan, names, train_idx, ref_idx, manifest, summary, label_map=reduction["label_map"],
                        kept_classes=reduction["kept_mask"], ref_keep=ref_keep)
        w.barrier()
    return BuildResult(config.out, summary, times)
