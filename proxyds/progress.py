"""Progress bars for long stages: shown on a terminal, silent in logs and CI."""

from __future__ import annotations

from tqdm.auto import tqdm

__all__ = ["progress"]


def progress(iterable=None, **kwargs):
    """``tqdm`` that disappears when done and is disabled when stderr is not a terminal."""
    kwargs.setdefault("leave", False)
    kwargs.setdefault("disable", None)
    kwargs.setdefault("mininterval", 0.5)
    return tqdm(iterable, **kwargs)
