"""Streaming readers. ``open_source("hf:…" | "wds:…", split)`` is the one place a source
spec is dispatched; the heavy readers are imported only when used.

Every source yields :class:`Example` records in a stable order, shard by shard, and exposes
``info`` (:class:`SplitInfo`) and ``shards`` (the shard names, in read order).
"""

from __future__ import annotations

from proxyds.sources.base import Example, SplitInfo

__all__ = ["Example", "SplitInfo", "open_source", "SCHEMES"]

SCHEMES = ("hf", "wds")


def open_source(spec: str, split: str, *, label_column: str | None = None, key_column: str | None = None):
    """One split of a dataset given as ``hf:LOCATION`` or ``wds:LOCATION``."""
    scheme, sep, location = spec.partition(":")
    if not sep or scheme not in SCHEMES or not location:
        raise ValueError(f"source {spec!r} is not hf:LOCATION or wds:LOCATION "
                         f"(e.g. hf:/data/cifar10, wds:/data/train-{{000000..000099}}.tar)")
    if scheme == "hf":
        from proxyds.sources.hf import HFSource

        return HFSource(location, split, label_column=label_column or "label", key_column=key_column)
    from proxyds.sources.wds import WdsSource

    return WdsSource(location, split, label_column=label_column or "cls", key_column=key_column)
