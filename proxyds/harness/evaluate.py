"""Ranking harness: does a proxy order a search space's configs as the full data does?

Every config of a space is trained on the full train split for S seeds, then on the proxies
of every selector x ratio x seed, and each trained model is scored on a held-out split. The
data live in memory as tensors (airbench style), so a proxy is just an index into the train
tensors. Three disjoint parts are used:

* **train** — what configs (and probes) train on; proxies are subsets of it;
* **reference split A** — scores importance (the probe selector's cases); never an accuracy;
* **evaluation split B** — every reported accuracy, full and proxy.

(The paper scores importance and measures accuracy on the same test set, which leaks.)

Each training run is cached as one JSON file keyed by (data fingerprint, space, config,
training recipe, train subset, seed), so reruns and new selectors reuse every run already
done; the probes' weights are cached beside them.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from proxyds.harness.data import (DataSpec, EvalData, TrainRecipe, accuracy, load_data, predict, train_model,
                                  trainer_version)
from proxyds.harness.settings import BENCHMARKS, DEFAULT_SELECTORS, EvaluateConfig, SourceSpec
from proxyds.harness.spread import evaluation_world, from_main, main_first, rank_device, share, train_jobs
from proxyds.harness.spread import threads as _threads
from proxyds.pipeline.cache import fingerprint
from proxyds.pipeline.distributed import World
from proxyds.pipeline.probes import pick_device
from proxyds.selection.sampling import draw, proxy_size
from proxyds.sinks.atomic import atomic_write

__all__ = ["TrainRecipe", "DataSpec", "SourceSpec", "EvalData", "EvaluateConfig", "BENCHMARKS", "DEFAULT_SELECTORS",
           "load_data", "train_model", "predict", "accuracy", "Harness", "evaluate", "run_timing"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Job:
    config: str
    seed: int
    subset: np.ndarray | None   # train indices, None = the full train split
    keep_model: bool = False
    recipe: TrainRecipe | None = None  # None = the harness's (full-data) recipe


class Harness:
    """Trains configs of ``space`` on ``data`` (all of train, or a subset) and caches each run.

    A run's JSON (``accuracy`` on split B, ``seconds``) lives in ``cache_root`` under a hash of
    (data fingerprint, space, config, recipe, subset, seed); a run asked for again is read, not
    retrained. ``workers > 1`` trains in that many processes of one thread each (on a small
    shared CPU, one thread per process is several times faster than threads sharing a model);
    ``threads`` is torch's thread count while training, in this process or each worker. Under
    ``torchrun`` (``world``) each rank trains its share of every batch of runs
    (:mod:`proxyds.harness.spread`) and reads the others' from the cache.
    """

    def __init__(self, data: EvalData, space, recipe: TrainRecipe, cache_root: Path, *, workers: int = 1,
                 threads: int = 1, device: str = "cpu", world: World = World()):
        self.data, self.space, self.recipe = data, space, recipe
        self.cache_root = Path(cache_root)
        self.workers, self.threads, self.world = workers, threads, world
        self.device = pick_device(device)
        self.trained_runs = 0  # runs trained (not read from the cache) by this harness, on this rank
        self.space_spec = space.name  # how a worker process finds the space again
        self._fp = data.fingerprint

    def __getstate__(self) -> dict:  # worker processes re-resolve the space from its name or entry point
        return dict(self.__dict__, space=self.space_spec)

    def __setstate__(self, state: dict) -> None:
        from proxyds.spaces import resolve_space

        self.__dict__.update(state, space=resolve_space(state["space"]))

    def _subset_key(self, job: _Job) -> str:
        return "full" if job.subset is None else fingerprint(np.asarray(job.subset, np.int64).tobytes())[:16]

    def _path(self, job: _Job) -> Path:
        """Where a run is cached: keyed by the trainer's version too, so a changed trainer retrains."""
        subset = self._subset_key(job)
        key = {"v": 1, "trainer": trainer_version(), "data": self._fp, "space": self.space.name,
               "config": job.config, "recipe": asdict(job.recipe or self.recipe), "subset": subset,
               "seed": job.seed, **self._key_extra()}
        return self.cache_root / self.space.name / f"{job.config}-{subset}-s{job.seed}-{fingerprint(key)[:12]}.json"

    def _key_extra(self) -> dict:
        """What else a run's batches depend on (none here: the data are tensors)."""
        return {}

    def cached(self, job: _Job) -> dict | None:
        path = self._path(job)
        if not path.exists() or (job.keep_model and not path.with_suffix(".pt").exists()):
            return None
        return json.loads(path.read_text())

    def run(self, job: _Job) -> dict:
        """Train one job here, write its cache entry (and weights if asked), return its result."""
        start = time.perf_counter()
        torch.manual_seed(job.seed)
        model = self.space.build(job.config, self.data.num_classes)
        idx = slice(None) if job.subset is None else torch.as_tensor(job.subset, dtype=torch.long)
        train_model(model, self.data.x_train[idx], self.data.y_train[idx], job.recipe or self.recipe,
                    seed=job.seed, device=self.device)
        result = {"config": job.config, "seed": job.seed, "train_examples": len(self.data.y_train[idx]),
                  "accuracy": accuracy(model, self.data.x_eval, self.data.y_eval, device=self.device),
                  "seconds": round(time.perf_counter() - start, 3)}
        path = self._path(job)
        path.parent.mkdir(parents=True, exist_ok=True)
        if job.keep_model:
            state = {k: v.cpu() for k, v in model.state_dict().items()}
            atomic_write(path.with_suffix(".pt"), lambda p: torch.save(state, p))
        atomic_write(path, lambda p: p.write_text(json.dumps(result)))
        return result

    def run_many(self, jobs: list[_Job], desc: str = "train") -> list[dict]:
        """Results of ``jobs`` in order: cached ones read, the rest trained (in parallel if set;
        under torchrun each rank trains its share and reads the others' from the cache)."""
        w = self.world
        results = [self.cached(j) for j in jobs]
        # rank 0's view of what is left: a run another rank writes meanwhile changes no one's share
        todo = from_main(w, lambda: [i for i, r in enumerate(results) if r is None])
        mine = [todo[k] for k in share(len(todo), w.rank, w.size)]
        self.trained_runs += len(mine)
        log.info("%s: %d runs, %d cached, %d to train%s", desc, len(jobs), len(jobs) - len(todo), len(todo),
                 f"; rank {w.rank} of {w.size} trains {len(mine)}" if w.size > 1 else "")
        error = None
        try:
            for i, result in zip(mine, train_jobs(self, [jobs[i] for i in mine], desc)):
                results[i] = result
        except Exception as err:  # noqa: BLE001 - raised on every rank, so none waits for the others forever
            error = err
        w.raise_together(error)  # also the barrier after which every rank's runs are in the cache
        for i in todo:
            results[i] = results[i] or self.cached(jobs[i])
            if results[i] is None:
                raise RuntimeError(f"run {jobs[i].config} seed {jobs[i].seed} is missing from the run cache "
                                   f"{self.cache_root} after every rank trained its share; is it shared by all ranks?")
        return results

    def trained(self, config, seed: int = 0) -> torch.nn.Module:
        """``config`` trained on the full train split with ``seed`` (the same run as the full-data
        pass's, so a probe costs nothing extra when the space's configs include it)."""
        name = getattr(config, "name", config)
        job = _Job(name, seed, None, keep_model=True)
        if self.cached(job) is None:
            with _threads(self.threads):
                self.run(job)
            self.trained_runs += 1
        torch.manual_seed(seed)
        model = self.space.build(name, self.data.num_classes)
        model.load_state_dict(torch.load(self._path(job).with_suffix(".pt"), map_location="cpu", weights_only=True))
        return model.to(self.device).eval()


def probe_scores(harness: Harness, data: EvalData, space, *, probes: int = 2, pca_components: int = 64,
                 seed: int = 0):
    """The :class:`~proxyds.selection.selectors.Scores` a build computes, from the harness's probes (the
    space's ``probes`` configs spread by MACs, trained on the full train split with seed 0):
    what every selector weighs, the same object in build and evaluate."""
    from proxyds.pipeline.probes import label_prob_entropy
    from proxyds.selection import importance as imp
    from proxyds.selection.mapping import NeighborMap
    from proxyds.selection.selectors import Scores

    configs = space.probes(probes, data.num_classes)
    models = [harness.trained(c) for c in configs]
    y_ref, y = data.y_ref.numpy(), data.y_train.numpy()
    ref = [predict(m, data.x_ref, device=harness.device) for m in models]
    train = [predict(m, data.x_train, device=harness.device) for m in models]
    correct = np.stack([logits.argmax(1) == y_ref for logits, _ in ref], axis=1)
    accuracy = correct.mean(0).tolist()
    ref_importance = imp.pairwise_importance(imp.pairwise_cases(correct, accuracy), imp.DEFAULT_WEIGHTS)
    neighbor, _ = NeighborMap(pca_components, "hnsw", seed=seed).fit(ref[-1][1]).query(train[-1][1])
    per_probe = [label_prob_entropy(torch.from_numpy(logits), y) for logits, _ in train]
    scores = Scores(y, np.stack([tp.numpy() for tp, _ in per_probe]), np.stack([e.numpy() for _, e in per_probe]),
                    ref_importance[neighbor], data.num_classes, seed)
    notes = {"probes": [c.name for c in configs], "reference_accuracy": accuracy,
             "neighbour_label_agreement": float((y == y_ref[neighbor]).mean())}
    return scores, notes


def _proxy_jobs(cfg: EvaluateConfig, data: EvalData, scores, probe_notes: dict, names: list[str]):
    """Every selector x ratio x seed proxy drawn from ``scores``, a training job per config on each,
    where each job belongs, and each selector's notes (probes, class counts, flat weights)."""
    from proxyds.selection.selectors import select_weights
    from proxyds.selection.signal import flat_weights

    n_train, keys = len(data.y_train), [str(i) for i in range(len(data.y_train))]
    notes, jobs, where = {}, [], []
    for sel in cfg.selectors:
        weights = select_weights(sel, scores)
        # one set of weights for every proxy seed (the probes are trained once, with seed 0)
        notes[sel] = dict(probe_notes, flat_weight_seeds=list(range(cfg.proxy_seeds)) if flat_weights(weights) else [])
        for ratio in cfg.ratios:
            k = proxy_size(ratio, n_train)
            recipe = cfg.proxy_training(ratio)
            for s in range(cfg.proxy_seeds):
                subset = np.flatnonzero(draw(keys, weights, k, seed=s))
                counts = np.bincount(data.y_train.numpy()[subset], minlength=data.num_classes)
                notes[sel].setdefault("class_counts", {})[f"{ratio}/{s}"] = counts.tolist()
                for n in names:
                    jobs.append(_Job(n, 1000 + s, subset, recipe=recipe))
                    where.append((sel, ratio, s, n))
    return jobs, where, notes


def evaluate(cfg: EvaluateConfig) -> dict:
    """Train every config on the full data and on every proxy, compute the ranking metrics and
    write the report (results.json, report.md, figures) to ``cfg.out``; returns the results. A
    :class:`SourceSpec` is evaluated through the build's stages and loaders
    (:func:`proxyds.harness.streamed.evaluate_source`)."""
    if isinstance(cfg.data, SourceSpec):
        from proxyds.harness.streamed import evaluate_source

        return evaluate_source(cfg)
    from proxyds.harness import report
    from proxyds.harness.zerocost import ZERO_COST_BATCH, zero_cost_scores
    from proxyds.presets import cache_dir
    from proxyds.spaces import get_space

    t0 = time.perf_counter()
    device, w = rank_device(cfg.device), evaluation_world()  # an unavailable device fails before any work
    data = main_first(w, lambda: load_data(cfg.data))  # rank 0 generates (or finds) the data, then the others
    space = get_space(cfg.space)
    configs = [space.config(n) for n in cfg.configs] if cfg.configs else list(space.configs)
    names = [c.name for c in configs]
    harness = Harness(data, space, cfg.recipe, Path(cfg.cache or cache_dir() / "evaluate"), workers=cfg.workers,
                      threads=cfg.threads, device=str(device), world=w)
    # seed 0's weights are kept for every config: selectors may use any of them as probes
    full_jobs = [_Job(n, s, None, keep_model=(s == 0)) for s in range(cfg.full_seeds) for n in names]
    full = harness.run_many(full_jobs, desc="full data")
    t_full = time.perf_counter()

    scores, probe_notes = from_main(w, lambda: probe_scores(harness, data, space))  # the probes: rank 0's
    jobs, where, notes = _proxy_jobs(cfg, data, scores, probe_notes, names)
    proxy = harness.run_many(jobs, desc="proxies")
    t_proxy = time.perf_counter()

    full_acc = np.array([[r["accuracy"] for r in full[s * len(names):(s + 1) * len(names)]]
                         for s in range(cfg.full_seeds)])
    proxy_acc = {(sel, r): np.zeros((cfg.proxy_seeds, len(names))) for sel in cfg.selectors for r in cfg.ratios}
    for (sel, ratio, s, n), res in zip(where, proxy):
        proxy_acc[sel, ratio][s, names.index(n)] = res["accuracy"]
    timing = run_timing(harness, full, proxy, (t0, t_full, t_proxy))
    zero_cost = zero_cost_scores(space, configs, data.x_train[:ZERO_COST_BATCH], data.num_classes)
    results = report.assemble(cfg, data.description, space, configs, data.num_classes, full_acc, proxy_acc,
                              notes, timing, zero_cost)
    if w.main:  # one writer; the other ranks return the same results
        report.write(results, cfg.out)
    w.barrier()
    return results


def run_timing(harness: Harness, full: list[dict], proxy: list[dict], clock: tuple[float, float, float]) -> dict:
    """The report's timing: runs, runs trained now (in all and by rank under torchrun), the runs'
    own training seconds, and the wall time of the full-data and proxy phases (``clock``: their
    start, the end of the first, the end of the second)."""
    by_rank = harness.world.gather(harness.trained_runs)
    t0, t_full, t_proxy = clock
    timing = {"full_runs": len(full), "proxy_runs": len(proxy), "trained_runs": sum(by_rank),
              "full_train_seconds": round(sum(r["seconds"] for r in full), 1),
              "proxy_train_seconds": round(sum(r["seconds"] for r in proxy), 1),
              "wall_seconds": {"full": round(t_full - t0, 1), "proxies": round(t_proxy - t_full, 1)}}
    if len(by_rank) > 1:
        timing["trained_runs_by_rank"] = by_rank
    return timing
