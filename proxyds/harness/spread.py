"""Spreading an evaluation's independent runs: over processes on this machine (``--workers N``)
and over the ranks of a ``torchrun`` job (each rank trains whole runs; no DDP).

Every run is one cached JSON file (:class:`~proxyds.harness.evaluate.Harness`), so spreading is
only a question of who trains which run: rank ``r`` of ``W`` trains the runs ``r, r + W, …`` of
each batch still to train (:func:`share`), in ``--workers`` processes of its own; then every rank
waits for the others and reads their runs from the shared cache. What every run depends on (the
probes, the build's proxies) is made once, by rank 0 (:func:`from_main`, :func:`main_first`).
A run trains the same wherever it runs (its seed, its batches), so the results do not depend on
``--workers`` or the world size.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from datetime import timedelta

import torch
import torch.distributed as dist

from proxyds.pipeline.distributed import World, world
from proxyds.pipeline.loader import default_workers
from proxyds.pipeline.probes import pick_device
from proxyds.progress import progress

__all__ = ["share", "evaluation_world", "rank_device", "from_main", "main_first", "loader_workers", "threads",
           "train_jobs"]

log = logging.getLogger(__name__)

#: How long a rank waits in a collective for the others (rank 0 training the probes, the slowest
#: rank's last run): longer than any evaluation, so a slow rank is never taken for a dead one
#: (a rank that fails ends the whole job: torchrun stops the others).
WAIT = timedelta(days=7)


def share(n: int, rank: int, size: int) -> list[int]:
    """The positions ``rank`` of ``size`` trains out of ``n`` runs: ``rank, rank + size, …``."""
    if not (isinstance(size, int) and size >= 1 and isinstance(rank, int) and 0 <= rank < size):
        raise ValueError(f"rank must be in [0, size) and size >= 1 (got rank {rank!r}, size {size!r})")
    return list(range(rank, n, size))


def evaluation_world() -> World:
    """This process's place in a ``torchrun`` job (a world of one without it). The ranks only pass
    small Python objects and wait for each other, so the group is gloo even when the runs train on
    CUDA, with a wait (:data:`WAIT`) longer than any evaluation."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("gloo", timeout=WAIT)
    return world()


def rank_device(device: str) -> torch.device:
    """``device`` checked (:func:`~proxyds.pipeline.probes.pick_device`: an unavailable one fails
    here, before any data is read); a bare ``cuda`` under torchrun is this rank's GPU (``LOCAL_RANK``)."""
    dev = pick_device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(dev)
    return dev


def from_main(w: World, fn: Callable):
    """``fn()`` computed by rank 0 alone and handed to every rank (its error raised on every rank)."""
    if w.size == 1:
        return fn()
    return w.gather(w.on_main(fn))[0]


def main_first(w: World, fn: Callable):
    """``fn()`` on rank 0 first (which fills the caches: scans, stage results), then on the others,
    which read them."""
    if w.size == 1:
        return fn()
    result = w.on_main(fn)
    return result if w.main else fn()


def loader_workers(input_shape, configured: int | None, processes: int) -> int:
    """DataLoader workers decoding each run's examples: the build's ``workers`` setting when given;
    else the build's default (:func:`~proxyds.pipeline.loader.default_workers`), cut so that
    ``processes`` training processes with theirs fit the machine's CPUs (one process each and its
    loader workers: ``processes x (1 + workers) <= CPUs``)."""
    if configured is not None:
        return configured
    default = default_workers(input_shape)
    return default if processes <= 1 else min(default, max(0, (os.cpu_count() or 2) // processes - 1))


@contextmanager
def threads(n: int):
    """torch's thread count set to ``n`` inside the block."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_jobs(harness, jobs: list, desc: str) -> list[dict]:
    """``harness.run(job)`` for every job, in order: here, or in ``harness.workers`` spawned
    processes of ``harness.threads`` threads each. The processes are not daemons, so each run's
    loader may start DataLoader workers of its own."""
    bar = progress(total=len(jobs), desc=desc, unit="run")
    results = []
    if harness.workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(min(harness.workers, len(jobs)), mp_context=mp.get_context("spawn"),
                                 initializer=_init_worker, initargs=(harness,)) as pool:
            for result in pool.map(_work, jobs):
                results.append(result)
                bar.update(1)
    else:
        with threads(harness.threads):
            for job in jobs:
                results.append(harness.run(job))
                bar.update(1)
    bar.close()
    return results


_WORKER = None


def _init_worker(harness) -> None:
    global _WORKER
    torch.set_num_threads(harness.threads)
    _WORKER = harness


def _work(job) -> dict:
    return _WORKER.run(job)
