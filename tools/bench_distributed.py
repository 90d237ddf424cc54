"""Scoring (or writing) throughput of a build under torchrun with W processes vs 1, side by side.

Both runs get the same probe checkpoints (so neither trains) and fresh work dirs (so both
score everything); the figure is the score_train stage's examples per second, as the
build reports it. On a machine with C cores, W <= C processes should scale the scoring pass.

    python tools/bench_distributed.py --world 2 [--data DIR] [--repeats 2] [--threads 1]

``--stage write`` measures the write stage instead (every rank writes its share of the
output shards), on synthetic ImageNet-like JPEGs in WebDataset tars (generated once, see
tools/make_synthetic_imagenet.py) with randomly initialised tiny2d probes from checkpoints,
written as parquet by default (each kept example converted and encoded: CPU work that more
processes can share; ``--format wds`` measures the direct copy, mostly the kernel's):
wall seconds of the stage as the build reports them, and CPU seconds summed over the ranks
(from each rank's ``stage write done in …`` log line). World 1 and W alternate round by
round; every run's output must be byte-identical (proxy.json's file digests), or it stops.

    python tools/bench_distributed.py --stage write --world 2 --train 4000 --repeats 3 --doc docs/benchmarks-images.md
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _run(world: int, data: str, ckpts: list[str], root: Path, tag: str, threads: int) -> dict:
    out, work = root / f"out-{tag}", root / f"work-{tag}"
    base = ["-m", "proxyds", "build", f"hf:{data}", "--space", "resnet1d", "--input-column", "x",
            "--ratio", "0.1", "--out", str(out), "--workdir", str(work), "--device", "cpu", "--allow-weak-probes",
            *ckpts]  # one-epoch probes: what is measured is throughput, not signal
    cmd = [sys.executable, *base] if world == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={world}", *base]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    stages = dict(re.findall(r"(\w+) ([\d.]+)", done.stdout.split("seconds per stage:")[1].splitlines()[0]))
    n = json.loads((out / "proxy.json").read_text())["summary"]["num_train"]
    return {"world": world, "score_train_s": float(stages["score_train"]), "score_reference_s":
            float(stages["score_reference"]), "examples": n, "throughput": n / float(stages["score_train"])}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--world", type=int, default=2)
    p.add_argument("--data", default=None, help="hf dataset dir (default: the mnist1d preset's cache)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads per process, the same for both runs (default 1: process scaling alone)")
    p.add_argument("--stage", choices=("score_train", "write"), default="score_train")
    p.add_argument("--train", type=int, default=4000, help="--stage write: synthetic train images")
    p.add_argument("--size", default="560,640", help="--stage write: min,max image side in px (~110 kB JPEGs)")
    p.add_argument("--ratio", type=float, default=0.5, help="--stage write: fraction kept")
    p.add_argument("--format", choices=("wds", "parquet"), default="parquet",
                   help="--stage write: output format (parquet: every example converted and encoded, CPU-bound; "
                        "wds: the direct copy, tar headers walked and bytes copied by the kernel)")
    p.add_argument("--doc", default=None, help="--stage write: markdown file to append the results to")
    args = p.parse_args()
    if args.stage == "write":
        from bench_write_ranks import bench_write

        bench_write(args)
        return
    from proxyds.presets import MNIST1D_ARGS, materialize_mnist1d
    data = args.data or str(materialize_mnist1d(MNIST1D_ARGS))
    root = Path(tempfile.mkdtemp(prefix="bench-dist-"))
    # probes once, shared by every timed run
    subprocess.run([sys.executable, "-m", "proxyds", "build", f"hf:{data}", "--ratio", "0.1", "--space", "resnet1d",
                    "--input-column", "x", "--out", str(root / "probes-out"), "--workdir", str(root / "probes"),
                    "--probe-epochs", "1", "--device", "cpu", "--allow-weak-probes"], check=True, capture_output=True)
    ckpts = [f"--probe={role}={next((root / 'probes' / 'probes').glob(f'resnet1d-{c}-*.pt'))}"
             for role, c in (("lower", "B8-K3-M2"), ("upper", "B32-K5-M4"))]
    rows = []
    for r in range(args.repeats):  # alternate, so drifting load hits both alike
        rows.append(_run(1, data, ckpts, root, f"1-{r}", args.threads))
        rows.append(_run(args.world, data, ckpts, root, f"{args.world}-{r}", args.threads))
    one = [x["throughput"] for x in rows if x["world"] == 1]
    many = [x["throughput"] for x in rows if x["world"] == args.world]
    print(f"date {time.strftime('%Y-%m-%d %H:%M')}, nproc {os.cpu_count()}, load {os.getloadavg()[0]:.1f}, "
          f"{args.threads} torch thread(s) per process")
    for x in rows:
        print(f"world {x['world']}: score_train {x['score_train_s']:.1f} s, {x['throughput']:.0f} examples/s")
    print(f"throughput ratio world {args.world} / world 1: {sum(many) / len(many) / (sum(one) / len(one)):.2f}")


if __name__ == "__main__":
    main()
