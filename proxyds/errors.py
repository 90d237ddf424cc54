"""Bad input and what to do about it, in one place.

:class:`BadInput` is a user's data problem (named by split, key and shard): the CLI prints it
as one line. :class:`ErrorPolicy` is the ``--on-error`` rule as one object (webdataset's
``handler=`` idea) instead of a string compared wherever input is read: call it with the
problem; under ``raise`` it raises :class:`BadInput`, under ``skip`` it returns and the caller
records the example as skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BadInput", "ErrorPolicy", "ON_ERROR"]

#: The values of ``--on-error``.
ON_ERROR = ("raise", "skip")


class BadInput(ValueError):
    """Input that cannot be used, named by split, key and shard."""


@dataclass(frozen=True)
class ErrorPolicy:
    """``raise``: the first bad example stops the build; ``skip``: it is counted and left out."""

    mode: str = "raise"

    def __post_init__(self):
        if self.mode not in ON_ERROR:
            raise ValueError(f"on_error must be one of {', '.join(ON_ERROR)} (got {self.mode!r})")

    @classmethod
    def of(cls, value: str | ErrorPolicy) -> ErrorPolicy:
        return value if isinstance(value, ErrorPolicy) else cls(value)

    @property
    def skips(self) -> bool:
        return self.mode == "skip"

    def __call__(self, problem: str, hint: str = "fix the data or pass --on-error skip") -> None:
        """Raise :class:`BadInput` (``problem; hint``) under ``raise``; return under ``skip``."""
        if not self.skips:
            raise BadInput(f"{problem}; {hint}" if hint else problem)
