"""Decoded batches of a split through a torch ``DataLoader`` with worker processes.

Workers split the split's shards between them (shard i goes to worker i mod W), decode
their examples, and hand back batches that carry each example's position in the split, so
the main process can check it against the scan and scatter results by position. Scoring
batches never span shards, so the result of a scoring pass does not depend on the number
of workers or ranks (``shards`` restricts a loader to one rank's shards). For probe training each
worker shuffles its stream through a buffer, seeded by (seed, epoch, worker).
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from proxyds.errors import BadInput, ErrorPolicy
from proxyds.pipeline.scan import SplitIndex
from proxyds.sources.decode import decode_input, input_value
from proxyds.sources.stream import batched, shuffled

__all__ = ["SplitLoader", "Batch", "default_workers"]


def default_workers(input_shape) -> int:
    """Images (C, H, W) are worth decoding in parallel; 1D inputs are not."""
    return 0 if len(input_shape) < 3 else max(1, min(8, (os.cpu_count() or 2) - 1))


class Batch:
    """Positions, keys, decoded inputs of the good examples, and (position, key, reason) of bad ones."""

    __slots__ = ("positions", "keys", "x", "bad")

    def __init__(self, positions, keys, x, bad):
        self.positions, self.keys, self.x, self.bad = positions, keys, x, bad

    def pin_memory(self) -> Batch:
        """The batch with its inputs in page-locked memory (what ``DataLoader(pin_memory=True)``
        calls), so copying them to a GPU can overlap the next batch's work."""
        return Batch(self.positions, self.keys, self.x.pin_memory(), self.bad)


class _Examples(IterableDataset):
    def __init__(self, source, index: SplitIndex, what: str, column: str, shape, on_error: str,
                 batch_size: int, shuffle_seed: int | None, buffer: int, shards: list[int] | None = None,
                 usable: np.ndarray | None = None):
        self.source, self.what, self.column, self.shape = source, what, column, tuple(shape)
        self.on_error, self.batch_size, self.shuffle_seed, self.buffer = on_error, batch_size, shuffle_seed, buffer
        self.ok = index.ok if usable is None else usable
        self.counts = np.bincount(index.shard_ids, minlength=len(index.shards))
        self.starts = np.concatenate([[0], np.cumsum(self.counts)[:-1]]).astype(np.int64)
        self.shards = list(range(len(self.starts))) if shards is None else list(shards)
        self.epoch = 0

    def _stream(self, shards: list[int]):
        for shard in shards:
            start = int(self.starts[shard])
            keep = self.ok[start:start + int(self.counts[shard])]
            select = getattr(self.source, "selected_examples", None)
            try:
                if select is not None:  # a source that can skip unread rows cheaply (parquet)
                    yield from ((start + j, ex) for j, ex in select(shard, start, keep))
                    continue
                for j, ex in enumerate(self.source.shard_examples(shard, start)):
                    if self.ok[start + j]:
                        yield start + j, ex
            except Exception as err:  # noqa: BLE001 - damaged shard: the scan already recorded (skip) it
                try:
                    ErrorPolicy.of(self.on_error)(f"{self.what} shard {self.source.shards[shard]} is unreadable: {err}",
                                                  hint="")
                except BadInput as bad:
                    raise bad from err

    def __iter__(self):
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        mine = self.shards[worker::workers]
        if self.shuffle_seed is not None:
            seed = (self.shuffle_seed * 1_000_003 + self.epoch) * 1009 + worker
            chunks = batched(shuffled(self._stream(mine), self.buffer, seed=seed), self.batch_size)
        else:  # batches never span shards: a shard's batches are the same whoever reads it
            chunks = (c for shard in mine for c in batched(self._stream([shard]), self.batch_size))
        for chunk in chunks:
            arrays, positions, keys, bad = [], [], [], []
            for pos, ex in chunk:
                try:
                    arrays.append(decode_input(input_value(ex.payload, self.column, ex.key), self.shape,
                                               name=self.column))
                    positions.append(pos)
                    keys.append(ex.key)
                except Exception as err:  # noqa: BLE001 - PIL, numpy and our checks raise many types
                    bad.append((pos, ex.key, ex.shard, f"undecodable input ({type(err).__name__}: {str(err)[:200]})"))
            x = torch.from_numpy(np.stack(arrays)) if arrays else torch.zeros((0, *self.shape))
            yield Batch(np.asarray(positions, dtype=np.int64), keys, x, bad)


class SplitLoader:
    """Iterate a split's usable examples as decoded :class:`Batch` es, checking keys and
    applying the bad-input rule (raise, or mark the example skipped in ``index``).
    ``usable`` (bool per position) fixes which examples are read, default ``index.ok`` now.
    ``pin_memory`` hands batches over in page-locked memory (for a CUDA device: asynchronous copies)."""

    def __init__(self, source, index: SplitIndex, what: str, *, column: str, shape, on_error: str,
                 batch_size: int, workers: int = 0, shuffle_seed: int | None = None, buffer: int = 10_000,
                 shards: list[int] | None = None, usable: np.ndarray | None = None, pin_memory: bool = False):
        self.index, self.what, self.on_error, self.pin_memory = index, what, on_error, pin_memory
        self.dataset = _Examples(source, index, what, column, shape, on_error, batch_size, shuffle_seed, buffer,
                                 shards, usable)
        n = len(self.dataset.shards)
        self.workers = min(workers, n) if getattr(source, "worker_safe", True) else 0

    def epoch(self, epoch: int = 0):
        self.dataset.epoch = epoch
        loader = DataLoader(self.dataset, batch_size=None, num_workers=self.workers,
                            persistent_workers=False, prefetch_factor=4 if self.workers else None,
                            pin_memory=self.pin_memory)
        for batch in loader:
            for pos, key, shard, reason in batch.bad:
                ErrorPolicy.of(self.on_error)(f"{self.what} example {key!r} (shard {shard}): {reason}",
                                              hint="fix it or pass --on-error skip")
                self.index.skip(pos, reason)
            for pos, key in zip(batch.positions, batch.keys):
                if key != self.index.keys[pos]:
                    raise BadInput(f"{self.what} split changed while it was read (at position {pos}, key "
                                       f"{key!r}); the source must not change during a build")
            yield batch

    def __iter__(self):
        return self.epoch(0)
