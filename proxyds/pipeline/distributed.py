"""Running a build under ``torchrun``: which shards are this rank's, and gathering results.

Without torchrun (no ``WORLD_SIZE`` in the environment, or 1) everything here is a no-op
for a single process. Under torchrun the process group is started from the environment
(gloo on CPU, NCCL when the build runs on CUDA). Ranks split a split's shards round-robin
(shard i -> rank i mod W); every per-example result carries its position in the split, and
the gathered pieces are put back in position order, so every rank ends with the same
arrays and the selection does not depend on the world size.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["World", "world"]


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

    def raise_together(self, error: BaseException | None) -> None:
        """Make a failure on one rank a failure on all (none is left waiting in a collective)."""
        errors = [e for e in self.gather(error) if e is not None]
        if errors:
            raise errors[0]


def world(device: torch.device | None = None) -> World:
    """This process's place in the job, starting the process group under torchrun."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    if not dist.is_initialized():
        backend = "nccl" if device is not None and device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
        if device is not None and device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return World(dist.get_rank(), dist.get_world_size())
