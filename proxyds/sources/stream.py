"""Plain generators over example streams (webdataset ``filters.py`` style)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

import numpy as np

__all__ = ["shuffled", "batched"]

T = TypeVar("T")


def shuffled(items: Iterable[T], buffer_size: int, seed: int) -> Iterator[T]:
    """Shuffle a stream through a buffer of ``buffer_size`` items, seeded.

    Each incoming item replaces a random buffered one, which is emitted; the buffer is
    drained in random order at the end. Memory is bounded by the buffer.
    """
    if buffer_size < 1:
        raise ValueError(f"buffer_size must be >= 1 (got {buffer_size})")
    rng = np.random.default_rng(seed)
    buf: list[T] = []
    for item in items:
        if len(buf) < buffer_size:
            buf.append(item)
            continue
        j = int(rng.integers(buffer_size))
        buf[j], item = item, buf[j]
        yield item
    for j in rng.permutation(len(buf)):
        yield buf[j]


def batched(items: Iterable[T], batch_size: int) -> Iterator[list[T]]:
    """Consecutive lists of ``batch_size`` items (the last may be shorter)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1 (got {batch_size})")
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch
