"""Plain generators over example streams (webdataset ``filters.py`` style)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

import numpy as np
import torch

from proxyds.sources.base import Example
from proxyds.sources.decode import decode_input, input_value

__all__ = ["shuffled", "batched", "to_tensors", "decode_examples"]

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


def to_tensors(batch: Sequence[Example], column: str, input_shape: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode a list of examples into (inputs float32 (B, *input_shape), labels int64 (B,))."""
    x = np.stack([decode_input(input_value(ex.payload, column, ex.key), input_shape, name=column) for ex in batch])
    y = np.fromiter((ex.label for ex in batch), dtype=np.int64, count=len(batch))
    return torch.from_numpy(x), torch.from_numpy(y)


def decode_examples(batch: Sequence[Example], column: str,
                    input_shape: Sequence[int]) -> tuple[torch.Tensor, list[int], list[tuple[int, str]]]:
    """Decode what can be decoded: (inputs of the good examples, their positions in ``batch``,
    (position, reason) of each example that could not be decoded)."""
    arrays, good, bad = [], [], []
    for i, ex in enumerate(batch):
        try:
            arrays.append(decode_input(input_value(ex.payload, column, ex.key), input_shape, name=column))
            good.append(i)
        except Exception as err:  # noqa: BLE001 - PIL, numpy and our own checks raise many types
            bad.append((i, f"undecodable input ({type(err).__name__}: {str(err)[:200]})"))
    x = torch.from_numpy(np.stack(arrays)) if arrays else torch.zeros((0, *input_shape))
    return x, good, bad
