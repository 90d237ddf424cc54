"""Helpers shared by the image benchmarks (bench_scoring, bench_memory, bench_copy):
machine description, load average, and appending a section to a markdown results file."""

from __future__ import annotations

import datetime
import os
import platform
import resource
import shlex
import sys
from pathlib import Path

__all__ = ["machine", "load", "append_section", "command_line", "table", "cpu_seconds"]


def machine(device: str = "cpu") -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                   if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = ""
    if str(device).startswith("cuda"):
        import torch

        gpu = f", GPU {torch.cuda.get_device_name(torch.device(device))}"
    return f"nproc {len(os.sched_getaffinity(0))} ({cpu}){gpu}, Python {platform.python_version()}"


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and every child it has reaped (DataLoader workers
    joined at the end of a pass, finished subprocesses): steadier than wall time on a shared machine."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def command_line(argv=None) -> str:
    args = sys.argv[1:] if argv is None else list(argv)
    return "python " + shlex.join([os.path.relpath(sys.argv[0]) if argv is None else sys.argv[0], *args])


def table(header: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return out


def append_section(doc: str | Path, lines: list[str]) -> None:
    """Append ``lines`` (a markdown section) to ``doc``, creating it with a title if new."""
    path = Path(doc)
    path.parent.mkdir(parents=True, exist_ok=True)
    head = "" if path.exists() else ("# Image pipeline benchmarks\n\nEach section is appended by one run of a "
                                     "`tools/bench_*.py` script (newest last).\n")
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    with path.open("a") as f:
        f.write(head + "\n" + lines[0] + f" ({stamp})\n" + "\n".join(lines[1:]) + "\n")
