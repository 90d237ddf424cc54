"""The standard ranking benchmark: does a proxy keep the architecture ranking?

Runs ``proxyds evaluate mnist1d-cnn`` (24 heterogeneous 1D CNNs on a harder MNIST-1D, 3
full-data seeds, every selector x {5%, 10%} x 3 seeds), then writes the benchmark's section
of docs/benchmarks.md (command, date, machine, wall time, the full report) to ``--doc``.

    python tools/bench_ranking.py --out docs/bench-ranking --doc docs/benchmarks-ranking.md --workers 2

Runs are cached (``$PROXYDS_CACHE/evaluate``); pass ``--cache`` to a fresh directory to time
the whole benchmark from scratch.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

from proxyds import EvaluateConfig, evaluate


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = " ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return (f"{platform.node() or 'host'}: {os.cpu_count()} CPU cores ({cpu}), {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}, torch {torch.__version__}; "
            f"load average at the end {load}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--benchmark", default="mnist1d-cnn", help="named benchmark (default mnist1d-cnn)")
    p.add_argument("--out", default="docs/bench-ranking", help="report directory")
    p.add_argument("--doc", default="docs/benchmarks-ranking.md", help="markdown section to write")
    p.add_argument("--workers", type=int, default=2, help="training processes (one thread each)")
    p.add_argument("--cache", default=None, help="run cache (default $PROXYDS_CACHE/evaluate)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    command = "python tools/bench_ranking.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    start = time.perf_counter()
    cfg = EvaluateConfig.from_benchmark(args.benchmark, args.out, workers=args.workers, cache=args.cache)
    results = evaluate(cfg)
    wall = time.perf_counter() - start
    report = (Path(args.out) / "report.md").read_text()
    t = results["timing"]
    record = Path(args.out) / "bench-timing.json"  # the last run that trained every run from scratch
    if t["trained_runs"] >= t["full_runs"] + t["proxy_runs"]:
        record.write_text(json.dumps({"wall_minutes": round(wall / 60, 1), "date": time.strftime("%Y-%m-%d %H:%M %Z"),
                                      "workers": args.workers, "command": command, "machine": machine()}, indent=1))
    cold = json.loads(record.read_text()) if record.exists() else None
    figures = Path(os.path.relpath(Path(args.out).resolve(), Path(args.doc).resolve().parent)).as_posix()
    body = report.split("\n", 1)[1].replace("](", f"]({figures}/")
    doc = "\n".join([
        "## Ranking benchmark: does a proxy keep the architecture ranking?", "",
        f"- command: `{command}`",
        f"- equivalent CLI: `proxyds evaluate {args.benchmark} --out {args.out} --workers {args.workers}`",
        f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}",
        f"- machine: {machine()}",
        f"- {t['full_runs']} full-data runs and {t['proxy_runs']} proxy runs; their training time summed over "
        f"runs: {(t['full_train_seconds'] + t['proxy_train_seconds']) / 60:.1f} min (on {args.workers} worker "
        f"processes, one thread each). This command trained {t['trained_runs']} runs (probes included; the "
        f"rest came from the run cache) in {wall / 60:.1f} min of wall-clock time.",
        f"- whole benchmark from an empty cache: {cold['wall_minutes']} min wall-clock ({cold['date']}, "
        f"{cold['workers']} workers; {cold['machine']})" if cold else "- no run from an empty cache recorded",
        "", "### Report", "", body.replace("\n# ", "\n### ").replace("\n## ", "\n#### "),
    ])
    Path(args.doc).parent.mkdir(parents=True, exist_ok=True)
    Path(args.doc).write_text(doc)
    print(f"wrote {args.doc} and {args.out}/ in {wall / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
