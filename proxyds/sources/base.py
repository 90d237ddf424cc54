"""The one record type every source yields and every sink consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Example", "SplitInfo"]


@dataclass(frozen=True)
class Example:
    """One input example, as read from its source.

    ``key`` is stable and unique within its split and contains no dots (WebDataset uses the
    first dot to split key from field). ``payload`` holds the ORIGINAL values untouched: for
    an ``hf:`` source the whole row (column -> value, label column included), for a ``wds:``
    source the tar fields (extension -> raw bytes, label field included). ``shard`` names the
    file the example came from.
    """

    key: str
    label: int
    payload: dict[str, Any]
    shard: str = ""


@dataclass(frozen=True)
class SplitInfo:
    """What a sink needs to know about a split besides its examples.

    ``format`` is ``"hf"`` or ``"wds"``; ``features`` is the ``datasets.Features`` of an
    ``hf`` split (None for ``wds``); ``class_names`` index the integer labels.
    """

    format: str
    label_column: str
    class_names: tuple[str, ...]
    features: Any = None
    extra: dict[str, Any] = field(default_factory=dict)
