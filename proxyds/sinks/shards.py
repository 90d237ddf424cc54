"""The output shard plan both sinks follow (WebDataset tars and parquet files alike).

A multiple of 8 shards with equal counts (+-1), so 8 GPUs, streaming dataloader workers or
``datasets.distributed.split_dataset_by_node`` each get the same share of a proxy.
"""

from __future__ import annotations

import math

__all__ = ["even_shards"]


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
