"""``proxyds build``: Algorithm 1 of the paper, end to end, as a list of streaming stages.

plan + scan (:mod:`.plan`, :mod:`.scan`) -> probes (:mod:`.score`: train or load) -> score
reference (cases, importance, PCA + index) -> score train (nearest reference, batch by batch)
-> sample (:mod:`.sample`: selector, label reduction, draw, manifest) -> write (:mod:`.write`:
atomic OUT, proxy.json last).

Only O(N) small arrays (keys, labels, neighbour index) are held for the train split; the
examples themselves stream through every pass. Each stage's result is kept in the work dir
under a fingerprint of its inputs (:mod:`proxyds.pipeline.cache`), so a killed build resumes.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from proxyds.config import BuildConfig
from proxyds.pipeline.cache import StageCache, fingerprint
from proxyds.pipeline.distributed import world
from proxyds.pipeline.plan import Plan, input_paths, resolve
from proxyds.pipeline.probes import pick_device, resolve_precision
from proxyds.pipeline.sample import sample
from proxyds.pipeline.scan import cached_scan, class_names
from proxyds.pipeline.score import check_probes, score_reference, score_train, train_or_load_probes
from proxyds.pipeline.summary import build_summary, probe_roles, proxy_training
from proxyds.presets import cache_dir
from proxyds.selection.sampling import proxy_size
from proxyds.selection.selectors import get_selector
from proxyds.sinks.atomic import check_output_dir, sha256_file

__all__ = ["build", "BuildResult", "resolve", "Plan", "probe_roles"]

log = logging.getLogger(__name__)


@dataclass
class BuildResult:
    out: Path
    summary: dict
    stage_seconds: dict = field(default_factory=dict)


@contextmanager
def _stage(times: dict, name: str):
    start, cpu = time.perf_counter(), time.process_time()
    log.info("stage %s ...", name)
    yield
    times[name] = round(time.perf_counter() - start, 3)
    log.info("stage %s done in %.1fs (%.2f CPU s in this process)", name, times[name], time.process_time() - cpu)


def _every_probe_given(config: BuildConfig) -> bool:
    """No probe trains: then the reference scoring pass is the first to decode inputs, and the scan
    need not decode them first (it does so only to find bad input before any training)."""
    return set(probe_roles(config.probes)) <= {role for role, _ in config.probe_checkpoints}


def build(config: BuildConfig) -> BuildResult:
    """Run the whole build; returns where it wrote and the summary printed by the CLI."""
    from proxyds.pipeline.write import write_proxy

    times: dict[str, float] = {}
    if config.out.exists() and not config.overwrite:
        raise FileExistsError(f"output directory {config.out} exists; pass --overwrite to replace it")
    device = pick_device(config.device)
    precision = resolve_precision(device, config.precision)  # bf16 without a device for it fails now
    get_selector(config.selector)  # an unknown selector fails now, not after training
    cache = StageCache(config.workdir or cache_dir() / "work")
    w = world(device)
    with _stage(times, "scan"):
        plan = resolve(config)
        plan.world = w
        check_output_dir(config.out, overwrite=config.overwrite, inputs=input_paths(plan))
        check = not _every_probe_given(config)
        if not check:
            log.info("every probe is given: the scoring passes, which decode every input, check them; the scan "
                     "reads keys and labels without decoding")
        train_idx, train_key = cached_scan(plan, plan.train, "train", cache, check_inputs=check)
        ref_idx, ref_key = cached_scan(plan, plan.reference, "reference", cache, check_inputs=check)
        names = class_names(plan.train.info, plan.reference.info, train_idx, ref_idx, plan.on_error)
        proxy_size(config.ratio, int(train_idx.ok.sum()))  # fail early on a ratio that rounds to nothing
    with _stage(times, "probes"):
        probe_cfgs, models, ckpts = train_or_load_probes(plan, train_idx, train_key, len(names), device)
    probes_key = fingerprint(train_key, ref_key, [sha256_file(p) for p in ckpts], config.on_error)
    with _stage(times, "score_reference"):
        ref = score_reference(plan, ref_idx, models, device, cache, probes_key)
        weak = check_probes(ref, ref_idx, probe_cfgs, config.allow_weak_probes)
    with _stage(times, "score_train"):
        train = score_train(plan, train_idx, models, device, cache, probes_key, ref.neighbors)
    with _stage(times, "sample"):
        selection = sample(config, train_idx, names, ref, train)
    reduction = selection.reduction
    summary = build_summary(plan, names, probe_cfgs, ref.accuracy, train.preds, train_idx, ref_idx, ref.cases,
                            selection.manifest)
    summary["selector"] = config.selector
    summary["precision"] = precision
    summary["proxy_training"] = proxy_training(config.ratio)
    summary["probe_checkpoints"] = [p.name for p in ckpts]
    summary["label_reduction"] = {k: v for k, v in reduction.items() if k not in ("kept_mask", "label_map")}
    summary["classes_without_examples"] = selection.empty
    if weak:
        summary["weak_probes"] = [w.message() for w in weak]
    with _stage(times, "write"):
        ref_keep = ref_idx.ok.copy()
        ref_keep[ref_keep] = reduction["kept_mask"][ref_idx.labels[ref_keep]]
        # every rank writes its share of the shards; rank 0 the rest, last (see proxyds.pipeline.write)
        write_proxy(plan, names, train_idx, ref_idx, selection.manifest, summary,
                    label_map=reduction["label_map"], kept_classes=reduction["kept_mask"], ref_keep=ref_keep)
    return BuildResult(config.out, summary, times)
