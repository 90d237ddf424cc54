"""What ``proxyds verify`` found: one report type, shared by every check module."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["VerifyReport"]


@dataclass
class VerifyReport:
    """What ``verify`` found: ``problems`` (one line each, naming the file/key), ``checked`` counts."""

    out: Path
    problems: list[str] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, problem: str) -> None:
        self.problems.append(problem)

    @contextmanager
    def guard(self, what: str):
        """Turn an unexpected error inside one check into a problem; the other checks still run."""
        try:
            yield
        except Exception as err:  # a reader or parser choking on damaged data is a finding, not a crash
            self.add(f"{what}: {type(err).__name__}: {err}")
