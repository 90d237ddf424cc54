"""Running a build under ``torchrun``: which shards are this rank's, and gathering results.

Without torchrun (no ``WORLD_SIZE`` in the environment, or 1) everything here is a no-op
for a single process. Under torchrun the process group is started from the environment
(gloo on CPU, NCCL when the build runs on CUDA). Ranks split a split's shards round-robin
(shard i -> rank i mod W); every per-example result carries its position in the split, and
the gathered pieces are put back in position order, so every rank ends with the same
arrays and the selection does not depend on the world size.

Every collective waits at most ``PROXYDS_DIST_TIMEOUT`` seconds (default 1800) for the other
ranks, so a rank that died or hangs fails the job instead of leaving the rest waiting forever.
"""

from __future__ import annotations

import datetime
import os
import pickle
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["World", "world", "TIMEOUT_ENV", "dist_timeout"]

TIMEOUT_ENV = "PROXYDS_DIST_TIMEOUT"
_DEFAULT_TIMEOUT_S = 1800


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shards(self, n: int) -> list[int]:
        """This rank's shards out of ``n``."""
        return list(range(self.rank, n, self.size))

    def gather(self, obj):
        """Every rank's ``obj``, in rank order (a list of one item without torchrun)."""
        if self.size == 1:
            return [obj]
        out = [None] * self.size
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.size > 1:
            dist.barrier()

    def on_main(self, fn):
        """``fn()`` on rank 0 alone: its result there (None on the other ranks), its error raised on
        every rank (:meth:`raise_together`), so no rank is left waiting for one that failed."""
        result = error = None
        if self.main:
            try:
                result = fn()
            except Exception as err:  # noqa: BLE001 - raised on every rank just below
                error = err
        self.raise_together(error)
        return result

    def raise_together(self, error: BaseException | None) -> None:
        """Make a failure on one rank a failure on all (none is left waiting in a collective): a
        rank raises its own error, the others the first one's (as a RuntimeError naming the rank
        when the error cannot be sent)."""
        if self.size == 1:
            if error is not None:
                raise error
            return
        errors = [e for e in self.gather(None if error is None else _sendable(error, self.rank)) if e is not None]
        if error is not None:
            raise error
        if errors:
            raise errors[0]


def world(device: torch.device | None = None) -> World:
    """This process's place in the job, starting the process group under torchrun."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    if not dist.is_initialized():
        backend = "nccl" if device is not None and device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, timeout=dist_timeout())
        if device is not None and device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return World(dist.get_rank(), dist.get_world_size())


def dist_timeout() -> datetime.timedelta:
    """How long a collective waits for the other ranks: ``PROXYDS_DIST_TIMEOUT`` seconds (default 1800)."""
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    if not text:
        return datetime.timedelta(seconds=_DEFAULT_TIMEOUT_S)
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < 1e9:  # nan and inf too
        raise ValueError(f"{TIMEOUT_ENV}={text!r} is not a positive number of seconds (e.g. 1800)")
    return datetime.timedelta(seconds=seconds)


def _sendable(error: BaseException, rank: int) -> BaseException:
    """``error`` if it can be sent (pickled, and rebuilt from its type and args as the receiving
    ranks will), else a RuntimeError saying it."""
    try:
        pickle.dumps(error)
        type(error)(*error.args)
        return error
    except Exception:  # noqa: BLE001 - any exception can fail to pickle in its own way
        return RuntimeError(f"rank {rank} failed: {type(error).__name__}: {error}")
