"""One small registry for everything users add to by name: search spaces, selectors, presets.

The timm ``@register_model`` pattern: ``REG.register(name)`` as a decorator (or
``REG.register(name, entry)``), ``REG.get(name)`` whose error for an unknown name lists the
known ones, ``REG.names(pattern)`` to list them.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Entries of one ``kind`` (a word for messages, e.g. "selector") by unique name."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str, entry: T | None = None) -> Callable[[T], T] | T:
        """Register ``entry`` under ``name`` (once); without ``entry``, a decorator that does."""
        if not isinstance(name, str) or not name or any(ch.isspace() for ch in name) or ":" in name:
            raise ValueError(f"{self.kind} name must be a non-empty string without spaces or ':' (got {name!r})")
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")

        def decorator(value: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = value
            return value

        return decorator if entry is None else decorator(entry)

    def get(self, name: str) -> T:
        if name not in self._entries:
            raise ValueError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}")
        return self._entries[name]

    def names(self, pattern: str = "*") -> list[str]:
        """Sorted names matching the fnmatch ``pattern``."""
        return [n for n in sorted(self._entries) if fnmatch.fnmatchcase(n, pattern)]

    def copy(self) -> Registry[T]:
        """An independent registry with the same entries (e.g. to register test entries)."""
        new = Registry(self.kind)
        new._entries = dict(self._entries)
        return new

    def values(self) -> list[T]:
        return [self._entries[n] for n in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._entries
