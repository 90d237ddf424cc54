"""``proxyds evaluate SOURCE``: every config trained on the full train split and on the build's
proxies, streaming through the build's loaders (:class:`~proxyds.pipeline.loader.SplitLoader`:
the same decoding, transforms and worker split of shards), never holding the dataset.

Runs go through the one trainer (:func:`~proxyds.pipeline.probes.train_probe`, as the in-memory
harness: Adam, cosine to 0) and are cached like the in-memory harness's (:class:`Harness`), keyed
by the data (both splits and the A/B cut), the space, the config, the recipe, the proxy (its
examples and labels), the seed and the trainer's version. A proxy trains on the examples the
manifest selected with their proxy labels, under the recipe (:mod:`proxyds.recipe`) applied to
the full-data recipe; its accuracy is measured on split B's examples of the classes it kept.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from proxyds.harness.data import TrainRecipe
from proxyds.harness.evaluate import Harness, _Job, run_timing
from proxyds.harness.settings import EvaluateConfig
from proxyds.harness.sources import SourceData, make_proxies, open_source_data
from proxyds.harness.spread import evaluation_world, from_main, loader_workers, main_first, rank_device, threads
from proxyds.harness.zerocost import ZERO_COST_BATCH, zero_cost_scores
from proxyds.pipeline.distributed import World
from proxyds.pipeline.loader import SplitLoader
from proxyds.pipeline.probes import PROBE_HPARAMS, pick_device, resolve_precision, to_device, train_probe
from proxyds.sinks.atomic import atomic_write

__all__ = ["StreamHarness", "train_streamed", "streamed_accuracy", "evaluate_source"]

log = logging.getLogger(__name__)


def train_streamed(model: torch.nn.Module, loader: SplitLoader, labels: np.ndarray, recipe: TrainRecipe, *,
                   examples: int, device: torch.device) -> torch.nn.Module:
    """Train ``model`` in place on ``loader``'s examples (shuffled by its seed each epoch) with
    ``labels`` (indexed by split position), through the one trainer: Adam, cosine to 0, no warm-up."""
    def epoch_batches(epoch: int):
        for batch in loader.epoch(epoch):
            if len(batch.positions) >= 2:  # BatchNorm cannot train on one example; it is dropped this epoch
                yield batch.x, torch.from_numpy(labels[batch.positions])

    train_probe(model, epoch_batches, steps_per_epoch=math.ceil(examples / recipe.batch_size), epochs=recipe.epochs,
                lr=recipe.lr, weight_decay=recipe.weight_decay, warmup_steps=0, device=device, desc="run",
                optimizer="adam")
    return model


@torch.inference_mode()
def streamed_accuracy(model: torch.nn.Module, loader: SplitLoader, labels: np.ndarray, *,
                      device: torch.device) -> float:
    """Top-1 accuracy of ``model`` over ``loader``'s examples against ``labels`` (by split position)."""
    model.to(device).eval()
    correct = total = 0
    for batch in loader:
        if len(batch.positions):
            pred = model(to_device(batch.x, device)).argmax(1).cpu().numpy()
            correct += int((pred == labels[batch.positions]).sum())
            total += len(batch.positions)
    if total == 0:
        raise ValueError("evaluation split B has no usable example of the classes this proxy kept")
    return correct / total


class StreamHarness(Harness):
    """:class:`Harness` over a source: a job's ``subset`` is a :class:`Proxy` (None = the full
    train split), and every run streams through the build's loaders, whose DataLoader workers
    (:func:`~proxyds.harness.spread.loader_workers`) decode beside ``workers`` training processes.
    ``space_spec`` is how a training process finds the space again (a name or ``module:attr``)."""

    def __init__(self, data: SourceData, space, recipe: TrainRecipe, cache_root: Path, *, workers: int = 1,
                 threads: int = 1, device: str = "cpu", world: World = World(), space_spec: str | None = None):
        self.data, self.space, self.recipe = data, space, recipe
        self.cache_root = Path(cache_root)
        self.workers, self.threads, self.world = workers, threads, world
        self.device = pick_device(device)
        self.trained_runs = 0
        self.space_spec = space_spec or space.name
        self._fp = data.key
        self.loader_workers = loader_workers(space.input_shape, data.plan.config.workers, workers)

    def __getstate__(self) -> dict:  # the plan's space is found again by its spec, as the harness's
        state = super().__getstate__()
        return dict(state, data=replace(self.data, plan=replace(self.data.plan, space=None)))

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self.data.plan.space = self.space

    def _subset_key(self, job: _Job) -> str:
        return "full" if job.subset is None else job.subset.key()

    def _key_extra(self) -> dict:
        """The shuffle interleaves one stream per loader worker (each over its share of the shards),
        so a run's batches depend on how many read the train split: more than one is in the key."""
        streams = min(self.loader_workers, len(self.data.train.shards))
        if not getattr(self.data.plan.train, "worker_safe", True) or streams <= 1:
            return {}
        return {"shuffle_streams": streams}

    def _loader(self, source, index, what: str, usable: np.ndarray, batch_size: int, seed: int | None):
        plan = self.data.plan
        return SplitLoader(source, index, what, column=plan.input_column, shape=self.space.input_shape,
                           on_error=plan.on_error, batch_size=batch_size, workers=self.loader_workers,
                           shuffle_seed=seed, buffer=PROBE_HPARAMS["shuffle_buffer"], usable=usable,
                           pin_memory=self.device.type == "cuda")

    def run(self, job: _Job) -> dict:
        """Train one job, streaming; measure it on split B; cache and return its result."""
        start, d, proxy = time.perf_counter(), self.data, job.subset
        recipe = job.recipe or self.recipe
        if proxy is None:
            usable, labels, classes = d.train.ok.copy(), d.train.labels, d.num_classes
            eval_labels = d.eval_index.labels
        else:
            usable, labels, classes = proxy.selected & d.train.ok, proxy.labels, proxy.num_classes
            eval_labels = np.where(d.eval_index.labels >= 0, proxy.label_map[np.maximum(d.eval_index.labels, 0)], -1)
        torch.manual_seed(job.seed)
        model = self.space.build(job.config, classes)
        loader = self._loader(d.plan.train, d.train, "train", usable, recipe.batch_size, job.seed)
        train_streamed(model, loader, labels, recipe, examples=int(usable.sum()), device=self.device)
        b = d.evaluation & d.eval_index.ok & (eval_labels >= 0)
        acc = streamed_accuracy(model, self._loader(d.eval_source, d.eval_index, "evaluation", b, 256, None),
                                eval_labels, device=self.device)
        result = {"config": job.config, "seed": job.seed, "train_examples": int(usable.sum()),
                  "classes": classes, "evaluation_examples": int(b.sum()), "accuracy": acc,
                  "seconds": round(time.perf_counter() - start, 3)}
        path = self._path(job)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda p: p.write_text(json.dumps(result)))
        return result


@dataclass
class _Proxies:
    jobs: list
    where: list
    notes: dict


def _proxy_jobs(cfg: EvaluateConfig, data: SourceData, names: list[str], device) -> _Proxies:
    """Every selector x ratio x seed proxy from the build's stages, and a training job per config."""
    jobs, where = [], []
    notes = {sel: {"class_counts": {}, "classes_kept": {}, "flat_weight_seeds": []} for sel in cfg.selectors}
    for s in range(cfg.proxy_seeds):
        proxies, probe_notes = make_proxies(data, cfg.selectors, cfg.ratios, s, device)
        for proxy in proxies:
            note = notes[proxy.selector]
            for k, v in probe_notes.items():
                note.setdefault(k, {})[str(s)] = v
            tag = f"{proxy.ratio}/{s}"
            note["class_counts"][tag] = np.bincount(data.train.labels[proxy.selected],
                                                    minlength=data.num_classes).tolist()
            note["classes_kept"][tag] = proxy.num_classes
            if proxy.flat_weights and s not in note["flat_weight_seeds"]:
                note["flat_weight_seeds"].append(s)
            for n in names:
                jobs.append(_Job(n, 1000 + s, proxy, recipe=cfg.proxy_training(proxy.ratio)))
                where.append((proxy.selector, proxy.ratio, s, n))
    return _Proxies(jobs, where, notes)


def evaluate_source(cfg: EvaluateConfig) -> dict:
    """:func:`proxyds.harness.evaluate.evaluate` for a :class:`SourceSpec`: full-data runs, the
    build's proxies, proxy runs, the report."""
    from proxyds.harness import report
    from proxyds.presets import cache_dir
    from proxyds.spaces import resolve_space

    t0 = time.perf_counter()
    device, w = rank_device(cfg.device), evaluation_world()  # an unavailable device fails before any work
    resolve_precision(device, dict(cfg.data.build).get("precision", "auto"))  # so does bf16 without a device for it
    root = Path(cfg.cache or cache_dir() / "evaluate")
    space = resolve_space(cfg.space)
    data = main_first(w, lambda: open_source_data(cfg.data, cfg.space, root / "work", str(device)))  # rank 0 scans
    data.description["seeds"] = ("full run s: train seed s; proxy run s: the build's --seed s and --probe-seed s "
                                 "(probes shared by every selector and ratio), train seed 1000+s")
    configs = [space.config(n) for n in cfg.configs] if cfg.configs else list(space.configs)
    names = [c.name for c in configs]
    harness = StreamHarness(data, space, cfg.recipe, root / "runs", workers=cfg.workers, threads=cfg.threads,
                            device=str(device), world=w, space_spec=cfg.space)
    with threads(cfg.threads):  # probes and scoring passes too
        full = harness.run_many([_Job(n, s, None) for s in range(cfg.full_seeds) for n in names], desc="full data")
        t_full = time.perf_counter()
        # the build's stages once, on rank 0 (with any example its passes skipped); the other ranks take them
        made, status = from_main(w, lambda: (_proxy_jobs(cfg, data, names, harness.device), data.train.status))
        data.train.status = status
        proxy = harness.run_many(made.jobs, desc="proxies")
    t_proxy = time.perf_counter()
    full_acc = np.array([[r["accuracy"] for r in full[s * len(names):(s + 1) * len(names)]]
                         for s in range(cfg.full_seeds)])
    proxy_acc = {(sel, r): np.zeros((cfg.proxy_seeds, len(names))) for sel in cfg.selectors for r in cfg.ratios}
    for (sel, ratio, s, n), res in zip(made.where, proxy):
        proxy_acc[sel, ratio][s, names.index(n)] = res["accuracy"]
    timing = run_timing(harness, full, proxy, (t0, t_full, t_proxy))
    first = next(iter(harness._loader(data.plan.train, data.train, "train", data.train.ok.copy(), ZERO_COST_BATCH,
                                      None)))  # the first usable train examples, as the in-memory path takes
    zero_cost = zero_cost_scores(space, configs, torch.as_tensor(first.x), data.num_classes)
    results = report.assemble(cfg, data.description, space, configs, data.num_classes, full_acc, proxy_acc,
                              made.notes, timing, zero_cost)
    if w.main:  # one writer; the other ranks return the same results
        report.write(results, cfg.out)
    w.barrier()
    return results
