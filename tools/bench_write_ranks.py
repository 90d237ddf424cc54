"""``tools/bench_distributed.py --stage write``: the write stage of a build with 1 vs W processes.

See bench_distributed's docstring. Kept apart so the scoring benchmark stays short.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import append_section, command_line, load, machine, table  # noqa: E402
from bench_memory import TESTS, ensure_checkpoints  # noqa: E402
from bench_scoring import ensure_data  # noqa: E402

GOAL = 1.6  # write stage: wall(world 1) / wall(world 2) on 2 cores
_DONE = re.compile(r"stage write done in [\d.]+s \(([\d.]+) CPU s")


def run_write(world: int, data: Path, ckpts: dict, root: Path, tag: str, *, ratio: float, fmt: str,
              timeout: float = 3600) -> dict:
    """One build (under torchrun when ``world`` > 1); its write stage's wall and summed CPU seconds."""
    out, work = root / f"out-{tag}", root / f"work-{tag}"
    base = ["-m", "proxyds", "build", "imagenet", "--data", str(data), "-v", "--space", "tiny_spaces:tiny2d",
            "--ratio", str(ratio), "--format", fmt, "--out", str(out), "--workdir", str(work),
            "--probe", f"lower={ckpts['lower']}", "--probe", f"upper={ckpts['upper']}", "--label-reduction", "off",
            "--device", "cpu", "--allow-weak-probes"]  # untrained probes: what is measured is writing, not signal
    launch = [] if world == 1 else ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={world}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, *launch, *base], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)  # torchrun and every rank with it
        proc.communicate()
        raise
    if proc.returncode != 0:
        raise RuntimeError(f"build failed ({proc.returncode}) at world {world}:\n{stderr[-3000:]}")
    stages = dict(re.findall(r"(\w+) ([\d.]+)", stdout.split("seconds per stage:")[1].splitlines()[0]))
    cpu = [float(c) for c in _DONE.findall(stderr)]
    if len(cpu) != world:
        raise RuntimeError(f"expected {world} 'stage write done' lines, found {len(cpu)}")
    record = json.loads((out / "proxy.json").read_text())
    return {"world": world, "write_s": float(stages["write"]), "cpu_s": sum(cpu),
            "written": record["splits"]["train"]["rows"], "files": record["files"]}


def bench_write(args) -> None:
    lo, hi = (int(v) for v in args.size.split(","))
    data = ensure_data(Path(tempfile.gettempdir()) / "proxyds-bench" / f"write-{args.train}-{lo}-{hi}",
                       train=args.train, val=max(100, args.train // 40), classes=10, size=(lo, hi), per_shard=100,
                       quality=93)
    root = Path(tempfile.mkdtemp(prefix="bench-write-"))
    ckpts = ensure_checkpoints(root / "ckpt", 10)
    load_start, rows = load(), []
    for r in range(args.repeats):  # alternate, so drifting load hits both alike
        for world in (1, args.world):
            rows.append(run_write(world, data, ckpts, root, f"{world}-{r}", ratio=args.ratio, fmt=args.format))
            if rows[-1]["files"] != rows[0]["files"]:
                raise RuntimeError(f"world {world} wrote different bytes than world 1")
    one = statistics.median(x["write_s"] for x in rows if x["world"] == 1)
    many = statistics.median(x["write_s"] for x in rows if x["world"] == args.world)
    lines = table(["world", "write s (median)", "write s (rounds)", "CPU s, all ranks (rounds)", "examples written"],
                  [[w, f"{statistics.median(x['write_s'] for x in rows if x['world'] == w):.2f}",
                    ", ".join(f"{x['write_s']:.2f}" for x in rows if x["world"] == w),
                    ", ".join(f"{x['cpu_s']:.2f}" for x in rows if x["world"] == w), rows[0]["written"]]
                   for w in (1, args.world)])
    verdict = (f"write stage, world {args.world} ÷ world 1 speed-up: {one / many:.2f} "
               f"(goal ≥ {GOAL} for 2 processes on 2 cores: {'met' if one / many >= GOAL else 'NOT met'})")
    print("\n".join(lines + ["", verdict]))
    if args.doc:
        append_section(args.doc, [
            "## Write stage under torchrun: every rank writes its shards", "",
            f"- command: `{command_line()}`", f"- machine: {machine()}",
            f"- load average (1, 5, 15 min): {load_start} at the start, {load()} at the end",
            f"- data: {args.train:,} train synthetic JPEGs of {lo}-{hi} px (quality 93) in WebDataset tars of 100, "
            f"ratio {args.ratio}, output {args.format}; probes: random tiny2d checkpoints, OMP_NUM_THREADS=1",
            f"- write s = the build's own write-stage seconds (rank 0's); CPU s = the ranks' process CPU seconds "
            f"in that stage, summed; {args.repeats} round(s), world 1 and {args.world} alternating; every run's "
            "output byte-identical (proxy.json file digests)", "", *lines, "", verdict, ""])
