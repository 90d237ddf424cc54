"""Peak RSS of a whole build over a large vs a small train split (goal: large ÷ small <= 1.3).

Each build is ``python -m proxyds build imagenet --data ROOT/wds --space tiny_spaces:tiny2d
--ratio 0.1 ...`` in a subprocess, with a fresh work dir (no stage cache hits), probes loaded
from checkpoints (``--probe lower=… --probe upper=…``: randomly initialised tiny2d nets saved
once with ``torch.save``, so no training pass), ``--label-reduction off`` (so both sizes run
the same stages), and the same reference split (val) size. Two figures per build:

- ``max RSS``: ``ru_maxrss`` from ``os.wait4`` on the build process: the largest single
  process of the tree (the main process or a DataLoader worker, whichever peaked higher);
- ``tree RSS``: the sum of VmRSS over the build and all its descendants, sampled every
  0.1 s (peak over samples; can miss spikes shorter than that).

The goal's ratio uses ``max RSS``; ``tree RSS`` is shown so worker memory is not hidden.

    python tools/bench_memory.py --doc docs/benchmarks-images.md          # 100k vs 10k, ~5 min
    python tools/bench_memory.py --large 50000 --small 5000 ...           # if 100k is too slow

Data (32-48 px JPEGs, 100 classes, 1000 per shard) are generated once under ``--data-root``
(default /tmp/proxyds-bench) and reused.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import append_section, command_line, load, machine, table  # noqa: E402
from bench_scoring import ensure_data  # noqa: E402

log = logging.getLogger("bench_memory")

GOAL = 1.3
TESTS = Path(__file__).resolve().parents[1] / "tests"


def ensure_checkpoints(root: Path, num_classes: int, space: str = "tiny_spaces:tiny2d") -> dict[str, Path]:
    """State dicts of the space's cheapest (lower) and most expensive (upper) configs, random init."""
    import torch

    sys.path.insert(0, str(TESTS))
    from proxyds.spaces import resolve_space

    sp = resolve_space(space)
    paths = {}
    for role, cfg in zip(("lower", "upper"), sp.probes(2, num_classes)):
        path = root / f"{sp.name}-{cfg.name}-{num_classes}.pt"
        if not path.exists():
            torch.manual_seed(0)
            root.mkdir(parents=True, exist_ok=True)
            torch.save(sp.build(cfg, num_classes).state_dict(), path)
        paths[role] = path
    return paths


def _tree_rss(pid: int) -> int:
    """Sum of VmRSS (KiB) over ``pid`` and its descendants; 0 when it is gone."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    break
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return total


def run_build(data: Path, checkpoints: dict[str, Path], *, workers: int = 1, ratio: float = 0.1,
              extra: tuple[str, ...] = ()) -> dict:
    """One build in a subprocess; returns {max_rss_mib, tree_rss_mib, seconds, cmd}."""
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        cmd = [sys.executable, "-m", "proxyds", "build", "imagenet", "--data", str(data), "--space",
               "tiny_spaces:tiny2d", "--ratio", str(ratio), "--out", f"{tmp}/out", "--workdir", f"{tmp}/work",
               "--probe", f"lower={checkpoints['lower']}", "--probe", f"upper={checkpoints['upper']}",
               "--label-reduction", "off", "--workers", str(workers), "--device", "cpu",
               "--allow-weak-probes", *extra]  # untrained probes: what is measured is memory, not signal
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        peak, done = [0], threading.Event()

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], _tree_rss(proc.pid))
                done.wait(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        output = proc.stdout.read()
        done.set()
        sampler.join()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"build failed ({proc.returncode}): {' '.join(cmd)}\n{output.decode()[-3000:]}")
    return {"max_rss_mib": usage.ru_maxrss / 1024, "tree_rss_mib": peak[0] / 1024, "seconds": seconds,
            "cmd": " ".join(cmd[1:])}


def measure(large: Path, small: Path, checkpoints: dict[str, Path], *, workers: int = 1, repeats: int = 1) -> dict:
    """Builds over ``small`` and ``large`` (alternating, ``repeats`` each); per size the max of each figure."""
    runs: dict[str, list[dict]] = {"small": [], "large": []}
    for r in range(repeats):
        for name, data in ((("small", small), ("large", large)) if r % 2 == 0 else (("large", large), ("small", small))):
            res = run_build(data, checkpoints, workers=workers)
            log.info("%s build: max RSS %.0f MiB, tree RSS %.0f MiB, %.0fs (load %s)", name, res["max_rss_mib"],
                     res["tree_rss_mib"], res["seconds"], load())
            runs[name].append(res)
    out = {name: {k: max(x[k] for x in rs) for k in ("max_rss_mib", "tree_rss_mib", "seconds")}
           for name, rs in runs.items()}
    out["ratio"] = out["large"]["max_rss_mib"] / out["small"]["max_rss_mib"]
    out["tree_ratio"] = out["large"]["tree_rss_mib"] / out["small"]["tree_rss_mib"]
    out["cmd"] = runs["large"][0]["cmd"]
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--large", type=int, default=100_000, help="train images of the large build (default 100000)")
    p.add_argument("--small", type=int, default=10_000, help="train images of the small build (default 10000)")
    p.add_argument("--val", type=int, default=1000, help="reference (val) images, both builds")
    p.add_argument("--classes", type=int, default=100)
    p.add_argument("--size", default="32,48", help="min,max image side in px")
    p.add_argument("--data-root", default=str(Path(tempfile.gettempdir()) / "proxyds-bench"))
    p.add_argument("--workers", type=int, default=1, help="build --workers")
    p.add_argument("--repeats", type=int, default=1, help="builds per size (alternating)")
    p.add_argument("--doc", default=None, help="markdown file to append the results to")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    lo, hi = (int(v) for v in args.size.split(","))
    root = Path(args.data_root)
    data = {n: ensure_data(root / f"memory-{n}-{lo}-{hi}", train=n, val=args.val, classes=args.classes,
                           size=(lo, hi), per_shard=1000) for n in (args.small, args.large)}
    ckpts = ensure_checkpoints(root / "checkpoints", args.classes)
    load_start = load()
    res = measure(data[args.large], data[args.small], ckpts, workers=args.workers, repeats=args.repeats)
    lines = table(["train images", "max RSS MiB (largest process)", "tree RSS MiB (sampled sum)", "build s"],
                  [[f"{n:,}", f"{res[k]['max_rss_mib']:.0f}", f"{res[k]['tree_rss_mib']:.0f}", f"{res[k]['seconds']:.0f}"]
                   for n, k in ((args.small, "small"), (args.large, "large"))])
    lines += [f"| ratio {args.large // 1000}k ÷ {args.small // 1000}k | {res['ratio']:.3f} | {res['tree_ratio']:.3f} | |"]
    verdict = (f"- peak RSS ratio {res['ratio']:.3f} (goal <= {GOAL}: {'met' if res['ratio'] <= GOAL else 'MISSED'}); "
               f"process-tree ratio {res['tree_ratio']:.3f}")
    print("\n".join(lines + [verdict]))
    if args.doc:
        append_section(args.doc, [
            "## Peak RSS of a build: large ÷ small train split", "",
            f"- command: `{command_line(argv)}`",
            f"- machine: {machine()}",
            f"- load average (1, 5, 15 min): {load_start} at the start, {load()} at the end",
            f"- data: {args.small:,} and {args.large:,} train + {args.val:,} val synthetic JPEGs of {lo}-{hi} px, "
            f"{args.classes} classes, 1000 per shard; each build: `{res['cmd']}` (fresh work dir; probes are "
            "randomly initialised tiny2d checkpoints, so no training pass; hnsw mapping; wds output)",
            f"- {args.repeats} build(s) per size; the larger figure of the repeats is shown", "",
            *lines, "", verdict, ""])
    return 0


if __name__ == "__main__":
    sys.exit(main())
