"""A whole build ÷ the least any build must do, side by side in one run (issue 16's whole-build row).

The build: ``proxyds build imagenet --data DIR --ratio 0.1`` over synthetic JPEGs (WebDataset,
ImageNet layout) with given probe checkpoints (so nothing trains: random-init probes, saved
once, with ``--allow-weak-probes``), a fresh work dir and OUT each round, run as a user runs it
(a subprocess: imports, scan, both scoring passes, neighbour map, sample, copy pass, card).

The least a build must do, measured in the same process tree and summed:

- **raw read**: every input tar (train and val) read sequentially (``bench_copy.raw_read``);
- **bare decode + forward**: webdataset → decode + resize (the build's ``decode_input``) →
  batch → both probes' forward, over train and val, with the build's DataLoader worker count
  (``bench_scoring.bare_loop``).

Rounds alternate (build first on even rounds, the floor first on odd ones) after a warm-up read
that puts the input in the page cache, so both sides read warm. CPU seconds (user + system of
the process tree) are reported beside wall seconds: the machine is shared.

    python tools/bench_build.py --doc docs/benchmarks-images.md            # 100k JPEGs, ~30 min on 2 cores
    python tools/bench_build.py --train 2000 --val 200 --doc /tmp/x.md      # smoke
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path.insert(0, str(TESTS))  # tiny_spaces

from bench_common import append_section, command_line, cpu_seconds, load, machine, table  # noqa: E402
from bench_copy import raw_read  # noqa: E402
from bench_scoring import bare_loop, ensure_data  # noqa: E402

log = logging.getLogger("bench_build")

GOAL = 1.3


def _tars(data: Path) -> list[Path]:
    return sorted(data.glob("*.tar"))


def probe_checkpoints(space_name: str, classes: int, root: Path) -> list[str]:
    """``--probe ROLE=PATH`` arguments: the space's two probes, random init (seed 0), saved once."""
    from proxyds.spaces import resolve_space

    space = resolve_space(space_name)
    args = []
    for role, cfg in zip(("lower", "upper"), space.probes(2, classes)):
        path = root / f"{role}-{cfg.name}.pt"
        torch.manual_seed(0)
        torch.save(space.build(cfg, classes).state_dict(), path)
        args.append(f"--probe={role}={path}")
    return args


def build_once(data_root: Path, space: str, ckpts: list[str], work: Path, ratio: float) -> dict:
    """One ``proxyds build`` in a subprocess, fresh work dir and OUT; wall, CPU and stage seconds."""
    shutil.rmtree(work, ignore_errors=True)
    cmd = [sys.executable, "-m", "proxyds", "build", "imagenet", "--data", str(data_root / "wds"), "--space", space,
           "--ratio", str(ratio), "--out", str(work / "out"), "--workdir", str(work / "work"), "--device", "cpu",
           "--allow-weak-probes", *ckpts]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS.parent), str(TESTS)]))
    start, cpu0 = time.perf_counter(), cpu_seconds()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall, cpu = time.perf_counter() - start, cpu_seconds() - cpu0
    if done.returncode:
        raise RuntimeError(f"build failed:\n{done.stderr[-3000:]}")
    stages = dict(re.findall(r"(\w+) ([\d.]+)", done.stdout.split("seconds per stage:")[1].splitlines()[0]))
    shutil.rmtree(work, ignore_errors=True)
    return {"wall": wall, "cpu": cpu, "stages": {k: float(v) for k, v in stages.items()}}


def floor_once(data: Path, models, shape, workers: int, batch_size: int) -> dict:
    """Raw read of all input + bare decode + forward over train and val; wall and CPU of each part."""
    parts = {}
    start, cpu0 = time.perf_counter(), cpu_seconds()
    nbytes = raw_read([str(f) for f in _tars(data)])
    parts["raw read"] = (time.perf_counter() - start, cpu_seconds() - cpu0, nbytes)
    for split in ("train", "val"):
        files = [str(f) for f in _tars(data) if f.name.startswith(f"{split}-") or f"-{split}-" in f.name]
        start, cpu0 = time.perf_counter(), cpu_seconds()
        n = bare_loop(files, models, shape, batch_size=batch_size, workers=workers, device=torch.device("cpu"))
        parts[f"decode + forward {split}"] = (time.perf_counter() - start, cpu_seconds() - cpu0, n)
    return {"wall": sum(p[0] for p in parts.values()), "cpu": sum(p[1] for p in parts.values()), "parts": parts}


def measure(data_root: Path, *, space: str, classes: int, rounds: int, ratio: float, batch_size: int) -> dict:
    from proxyds.pipeline.loader import default_workers
    from proxyds.spaces import resolve_space

    data = data_root / "wds"
    scratch = Path(tempfile.mkdtemp(prefix="bench-build-"))
    ckpts = probe_checkpoints(space, classes, scratch)
    sp = resolve_space(space)
    models = []
    for cfg, arg in zip(sp.probes(2, classes), ckpts):
        m = sp.build(cfg, classes)
        m.load_state_dict(torch.load(arg.split("=", 2)[2], weights_only=True))
        models.append(m.eval())
    workers = default_workers(sp.input_shape)
    raw_read([str(f) for f in _tars(data)])  # warm-up: the input in the page cache for both sides
    builds, floors = [], []
    for r in range(rounds):
        order = ("build", "floor") if r % 2 == 0 else ("floor", "build")
        for side in order:
            if side == "build":
                builds.append(build_once(data_root, space, ckpts, scratch / "run", ratio))
                log.info("round %d build: %.1f s wall, %.1f CPU s, stages %s, load %s", r, builds[-1]["wall"],
                         builds[-1]["cpu"], builds[-1]["stages"], load())
            else:
                floors.append(floor_once(data, models, sp.input_shape, workers, batch_size))
                log.info("round %d floor: %.1f s wall, %.1f CPU s, load %s", r, floors[-1]["wall"], floors[-1]["cpu"],
                         load())
    shutil.rmtree(scratch, ignore_errors=True)
    return {"builds": builds, "floors": floors, "workers": workers, "probes": [c.name for c in sp.probes(2, classes)],
            "input_bytes": floors[0]["parts"]["raw read"][2]}


def _report(res: dict, args, load_start: str) -> list[str]:
    rows = []
    for i, (b, f) in enumerate(zip(res["builds"], res["floors"])):
        rows.append([i, "whole build", f"{b['wall']:.1f}", f"{b['cpu']:.1f}",
                     ", ".join(f"{k} {v:.1f}" for k, v in b["stages"].items())])
        rows.append([i, "floor (sum)", f"{f['wall']:.1f}", f"{f['cpu']:.1f}",
                     ", ".join(f"{k} {p[0]:.1f} s / {p[1]:.1f} CPU s" for k, p in f["parts"].items())])
    walls = [b["wall"] / f["wall"] for b, f in zip(res["builds"], res["floors"])]
    cpus = [b["cpu"] / f["cpu"] for b, f in zip(res["builds"], res["floors"])]
    wall, cpu = sum(walls) / len(walls), sum(cpus) / len(cpus)
    verdict = (f"- whole build ÷ floor: **{wall:.3f}** wall (rounds {', '.join(f'{w:.3f}' for w in walls)}), "
               f"{cpu:.3f} CPU s — goal ≤ {GOAL}: {'met' if wall <= GOAL else 'MISSED'}")
    return ["## Whole build ÷ (raw read + bare decode + probe forward)", "",
            f"- command: `{command_line()}`",
            f"- machine: {machine()}; load average {load_start} at the start, {load()} at the end",
            f"- data: {args.train:,} train / {args.val:,} val synthetic JPEGs of {args.size} px, {args.classes} "
            f"classes, {args.images_per_shard} per shard ({res['input_bytes'] / 1e6:,.0f} MB); space `{args.space}`, "
            f"probes {res['probes']} given as checkpoints (random init); ratio {args.ratio}; DataLoader workers "
            f"{res['workers']} on both sides; page cache warm", "",
            *table(["round", "side", "wall s", "CPU s", "parts"], rows), "", verdict, ""]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train", type=int, default=100_000)
    p.add_argument("--val", type=int, default=5_000)
    p.add_argument("--classes", type=int, default=100)
    p.add_argument("--size", default="64,160", help="min,max image side in px")
    p.add_argument("--images-per-shard", type=int, default=1000)
    p.add_argument("--space", default="tiny_spaces:tiny2d", help="probes' space (default: two tiny 16x16 CNNs)")
    p.add_argument("--ratio", type=float, default=0.1)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=128, help="the bare loop's batch (the build's default)")
    p.add_argument("--data-root", default=None)
    p.add_argument("--doc", default=None)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    lo, hi = (int(v) for v in args.size.split(","))
    root = Path(args.data_root or Path(tempfile.gettempdir()) / "proxyds-bench" / f"build-{args.train}-{lo}-{hi}")
    ensure_data(root, train=args.train, val=args.val, classes=args.classes, size=(lo, hi),
                per_shard=args.images_per_shard)
    load_start = load()
    res = measure(root, space=args.space, classes=args.classes, rounds=args.rounds, ratio=args.ratio,
                  batch_size=args.batch_size)
    lines = _report(res, args, load_start)
    print("\n".join(lines))
    if args.doc:
        append_section(args.doc, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
