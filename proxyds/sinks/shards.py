"""The output shard plan both sinks follow (WebDataset tars and parquet files alike).

A multiple of 8 shards with equal counts (+-1), so 8 GPUs, streaming dataloader workers or
``datasets.distributed.split_dataset_by_node`` each get the same share of a proxy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["even_shards", "plan_shards"]


def even_shards(n: int, per_shard: int, multiple: int = 8) -> list[int]:
    """Examples per shard for ``n`` examples: a shard count that is a multiple of ``multiple``
    (so shards split evenly over 8 GPUs or dataloader workers) and counts that differ by at most
    one, about ``per_shard`` each; fewer than ``multiple`` examples give one shard."""
    for name, value, low in (("n", n, 0), ("per_shard", per_shard, 1), ("multiple", multiple, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an int >= {low} (got {value!r})")
    if n < multiple:
        return [n]
    shards = multiple * max(1, math.ceil(n / (multiple * per_shard)))
    shards = min(shards, multiple * (n // multiple))
    base, extra = divmod(n, shards)
    return [base + (i < extra) for i in range(shards)]


def plan_shards(plan: list[int] | None, shards: Sequence[int] | None) -> list[int] | None:
    """The plan's shards a writer writes, as a list of their numbers: ``shards`` checked against
    ``plan`` (in order, each once, within it), or all of them; None without a plan (``maxcount``)."""
    if shards is None:
        return None if plan is None else list(range(len(plan)))
    ids = [int(i) for i in shards]
    if plan is None:
        raise ValueError("shards needs a plan: which of the plan's shards to write")
    if ids != sorted(set(ids)) or any(i < 0 or i >= len(plan) for i in ids):
        raise ValueError(f"shards must be increasing shard numbers of the plan's {len(plan)} shards, got {list(shards)!r}")
    return ids
