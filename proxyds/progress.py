"""Progress of long stages: a tqdm bar on a terminal, log lines everywhere else.

A batch job (SLURM, CI, ``nohup … > log``) has no terminal on stderr, where a bar would be
disabled and the job silent for hours. There, each stage logs a line to the
``proxyds.progress`` logger every 5% of its total or every 60 s, whichever comes first (and
once when it ends), with its count, rate and ETA::

    scan train: 3,000/12,000 shard (25%), 41.2 shard/s, ETA 0:03:38

Under torchrun, ranks other than 0 log to ``proxyds.progress.other_ranks``, which the CLI
leaves at WARNING: a job's log holds one line per step, not one per process.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time

__all__ = ["progress", "ProgressLog", "LOGGER", "EVERY_FRACTION", "EVERY_SECONDS"]

LOGGER = "proxyds.progress"
EVERY_FRACTION = 0.05
EVERY_SECONDS = 60.0


def progress(iterable=None, *, total=None, desc: str = "", unit: str = "it", **kwargs):
    """A ``tqdm`` bar that disappears when done when stderr is a terminal, else a
    :class:`ProgressLog`; both take ``update(n)``, ``set_postfix(...)``, ``close()`` and iterate."""
    if _stderr_is_terminal():
        from tqdm.auto import tqdm

        kwargs.setdefault("leave", False)
        kwargs.setdefault("mininterval", 0.5)
        return tqdm(iterable, total=total, desc=desc, unit=unit, **kwargs)
    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)
    # under torchrun every rank runs the stage on its share; one rank's lines are enough
    logger = logging.getLogger(LOGGER if os.environ.get("RANK", "0") in ("", "0") else LOGGER + ".other_ranks")
    return ProgressLog(iterable, total=total, desc=desc, unit=unit, logger=logger)


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


class ProgressLog:
    """Counts a stage's progress and logs a line every ``every_fraction`` of ``total`` or
    ``every_seconds``, whichever comes first, and once at ``close()``.

    ``clock`` (seconds, monotonic) and ``logger`` are parameters so the rule can be tested
    without waiting; :attr:`lines` counts the lines logged.
    """

    def __init__(self, iterable=None, *, total: int | None = None, desc: str = "", unit: str = "it",
                 every_fraction: float = EVERY_FRACTION, every_seconds: float = EVERY_SECONDS,
                 clock=time.monotonic, logger: logging.Logger | None = None):
        if total is not None and (not isinstance(total, (int, float)) or total < 0):
            raise ValueError(f"total must be a number >= 0 or None (got {total!r})")
        if not 0 < every_fraction <= 1:
            raise ValueError(f"every_fraction must be in (0, 1] (got {every_fraction!r})")
        if not every_seconds > 0:
            raise ValueError(f"every_seconds must be > 0 (got {every_seconds!r})")
        self.iterable, self.total, self.desc, self.unit = iterable, total, desc, unit
        self.every_fraction, self.every_seconds = every_fraction, every_seconds
        self.clock, self.log = clock, logger or logging.getLogger(LOGGER)
        self.n, self.lines, self.postfix, self.closed = 0, 0, "", False
        self.start = self.last_time = clock()
        self.last_step = 0  # the number of every_fraction steps of total reached at the last line

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update(1)
        self.close()

    def __len__(self) -> int:
        return int(self.total or 0)

    def update(self, n: int = 1) -> bool:
        """Count ``n`` more; returns True when this logged a line."""
        self.n += n
        now = self.clock()
        step = self._step()
        if self.total and self.n >= self.total:
            return False  # the end is close()'s line
        if step > self.last_step or now - self.last_time >= self.every_seconds:
            self._emit(now)
            self.last_step = step
            return True
        return False

    def set_postfix(self, **values) -> None:
        self.postfix = ", ".join(f"{k} {v}" for k, v in values.items())

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._emit(self.clock(), done=True)

    def _step(self) -> int:
        if not self.total:
            return 0
        return math.floor(min(self.n, self.total) / self.total / self.every_fraction + 1e-9)

    def _emit(self, now: float, done: bool = False) -> None:
        self.last_time, self.lines = now, self.lines + 1
        self.log.info("%s", self.line(now, done))

    def line(self, now: float, done: bool = False) -> str:
        """``desc: n/total unit (pct), rate unit/s, ETA h:mm:ss`` (or ``done in h:mm:ss``)."""
        elapsed = max(now - self.start, 0.0)
        rate = self.n / elapsed if elapsed > 0 else math.nan
        count = f"{self.n:,}/{self.total:,}" if self.total else f"{self.n:,}"
        text = f"{self.desc}: {count} {self.unit}"
        if self.total:
            text += f" ({100 * self.n / self.total:.0f}%)"
        text += f", {_rate(rate)} {self.unit}/s"
        if done:
            text += f", done in {_clock(elapsed)}"
        elif self.total and rate > 0:
            text += f", ETA {_clock(max(self.total - self.n, 0) / rate)}"
        elif self.total:
            text += ", ETA unknown"
        return text + (f" ({self.postfix})" if self.postfix else "")


def _rate(rate: float) -> str:
    if not math.isfinite(rate):
        return "-"
    return f"{rate:,.0f}" if rate >= 100 else f"{rate:.3g}"


def _clock(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
