"""Peak RSS: of a whole build over a large vs a small train split (``--case build``, goal: large
÷ small <= 1.3), and the two bounds of issue 16 (``--case keys reference``):

- ``keys``: 1.28M train keys of 40 characters, scanned, saved to and loaded from the stage
  cache, written to a manifest and read by ``ManifestSampler``, with one 250-character skip
  reason ÷ without it (goal <= 1.1);
- ``reference``: reference features (2,048-d, arriving 256 at a time) reduced as they arrive
  as a build does, 50k rows ÷ 5k rows (goal <= 1.3); the 50k rows held whole and fitted at
  once (the way before) are shown beside them.

Each of these runs in a child process (``--child``), its peak RSS from ``os.wait4``.

    python tools/bench_memory.py --case keys reference --doc docs/benchmarks-images.md   # ~3 min

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


# ---------------------------------------------------------------- the two memory bounds of issue 16
#
# Each case runs in a child process of this script (``--child``), so its peak RSS (ru_maxrss from
# os.wait4) and CPU seconds are its own; the two sizes of a case run one after the other.

class _KeySource:
    """``n`` examples with 40-character keys, ``per_shard`` a shard; with ``reason`` > 0 one
    example's label is a string that makes the scan skip it with a ``reason``-character message."""

    def __init__(self, n: int, reason: int, per_shard: int = 10_000):
        from proxyds.sources.base import SplitInfo

        self.n, self.reason, self.per_shard = n, reason, per_shard
        self.shards = [f"train-{i:06d}.tar" for i in range(-(-n // per_shard))]
        self.info = SplitInfo("wds", "cls", ())

    def shard_examples(self, index: int, start: int):
        from proxyds.sources.base import Example

        for i in range(index * self.per_shard, min(self.n, (index + 1) * self.per_shard)):
            label = "x" * (self.reason - 26) if self.reason and i == self.n // 2 else i % 1000
            yield Example(f"n01440764_{i:030d}", label, {"x.jpg": b"", "cls": b""}, self.shards[index])


def child_keys(n: int, reason: int, work: Path) -> None:
    """Scan -> stage cache save and load -> manifest -> ManifestSampler, as a build and its user do."""
    import numpy as np

    import proxyds.pipeline.score  # noqa: F401 - the build process's imports (torch, ...)
    from proxyds.manifest import write_manifest
    from proxyds.pipeline.cache import StageCache
    from proxyds.pipeline.scan import SplitIndex, scan
    from proxyds.sampler import ManifestSampler

    index = scan(_KeySource(n, reason), "train", input_column="x.jpg", on_error="skip")
    StageCache(work).save("scan-train", "0" * 64, index.to_arrays(), {"shard_errors": []})
    del index
    index = SplitIndex.from_arrays(StageCache(work).load("scan-train", "0" * 64)[0], [])
    assert len(index.status.counts()) == (1 if reason else 0)
    ok = index.ok
    w = np.where(ok, 1.0 / ok.sum(), 0.0)
    write_manifest(work / "manifest.parquet", {
        "index": np.arange(n), "key": index.keys, "shard": [index.shards[i] for i in index.shard_ids],
        "label": index.labels, "case": np.ones(n, np.int8), "importance": ok * 1.0, "keep_prob": w,
        "neighbor": np.zeros(n, np.int64), "distance": np.zeros(n, np.float32), "selected": ok,
        "proxy_label": index.labels, "status": index.status})
    del index
    ManifestSampler(work, ratio=0.1, num_replicas=1, rank=0)


def child_reference(n: int, dim: int, work: Path, whole: bool) -> None:
    """Reference features arriving 256 at a time, reduced as in a build (spill, PCA on a seeded
    sample, projection, hnsw index); ``whole``: held whole and fitted at once, the way before."""
    import numpy as np

    import proxyds.pipeline.score  # noqa: F401
    from proxyds.pipeline.distributed import World
    from proxyds.pipeline.reference import FeatureSpill, reduce_reference
    from proxyds.selection.mapping import NeighborMap

    rng = np.random.default_rng(0)
    basis = rng.standard_normal((32, dim)).astype(np.float32)
    batches = (np.maximum(rng.standard_normal((min(256, n - s), 32), dtype=np.float32) @ basis
                          + rng.standard_normal((min(256, n - s), dim), dtype=np.float32), 0) for s in range(0, n, 256))
    nmap = NeighborMap(64, "hnsw", seed=0)
    if whole:
        nmap.fit(np.concatenate(list(batches)))
    else:
        with FeatureSpill(work) as spill:
            ids = np.concatenate([spill.add(b)[0] for b in batches])
            nmap.fit_index(reduce_reference(spill, ids, nmap, World()))
    nmap.query(rng.standard_normal((256, dim), dtype=np.float32))


def run_child(args: list[str]) -> dict:
    """This script with ``--child ARGS`` in a fresh process: its peak RSS (MiB), CPU and wall seconds."""
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        cmd = [sys.executable, __file__, "--child", *args, "--work", tmp]
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        output = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{output.decode()[-3000:]}")
    return {"rss": usage.ru_maxrss / 1024, "cpu": usage.ru_utime + usage.ru_stime,
            "wall": time.perf_counter() - start}


def measure_bounds(cases, keys: int, reason: int, large: int, small: int, dim: int) -> list[dict]:
    """The two rows: (name, goal, [(label, result)] with the bound's numerator first)."""
    base = run_child(["imports"])
    log.info("imports only: peak RSS %.0f MiB", base["rss"])
    rows = []
    pairs = {"keys": [(f"{keys:,} keys, one {reason}-char skip reason", ["keys", str(keys), str(reason)]),
                      (f"{keys:,} keys, no skip", ["keys", str(keys), "0"])],
             "reference": [(f"reference {large:,} x {dim}, reduced as it arrives", ["reference", str(large), str(dim)]),
                           (f"reference {small:,} x {dim}, reduced as it arrives", ["reference", str(small), str(dim)]),
                           (f"reference {large:,} x {dim}, held whole (before)", ["reference", str(large), str(dim),
                                                                                 "whole"])]}
    for name, goal in (("keys", 1.1), ("reference", 1.3)):
        if name not in cases:
            continue
        results = []
        for label, args in pairs[name]:
            res = run_child(args)
            log.info("%s: peak RSS %.0f MiB, %.1f CPU s, %.1f s (load %s)", label, res["rss"], res["cpu"], res["wall"],
                     load())
            results.append((label, res))
        rows.append({"name": name, "goal": goal, "results": results, "ratio": results[0][1]["rss"] / results[1][1]["rss"],
                     "base": base})
    return rows


def bounds_lines(rows: list[dict]) -> list[str]:
    base = rows[0]["base"] if rows else {"rss": 0.0, "cpu": 0.0, "wall": 0.0}
    runs = [("imports only (proxyds.pipeline.score: torch, sklearn, datasets)", base)]
    runs += [run for row in rows for run in row["results"]]
    lines = table(["run", "peak RSS MiB", "over the imports MiB", "CPU s", "wall s"],
                  [[label, f"{r['rss']:.0f}", f"{r['rss'] - base['rss']:.0f}", f"{r['cpu']:.1f}", f"{r['wall']:.1f}"]
                   for label, r in runs])
    for row in rows:
        (a, _), (b, _) = row["results"][:2]
        lines.append(f"- {row['name']}: peak RSS ratio ({a}) ÷ ({b}) = {row['ratio']:.3f} (goal <= {row['goal']}: "
                     f"{'met' if row['ratio'] <= row['goal'] else 'MISSED'})")
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--case", nargs="+", choices=("build", "keys", "reference"), default=["build"])
    p.add_argument("--keys", type=int, default=1_280_000, help="train keys of the keys case")
    p.add_argument("--reason", type=int, default=250, help="characters of the one skip reason")
    p.add_argument("--ref-large", type=int, default=50_000)
    p.add_argument("--ref-small", type=int, default=5_000)
    p.add_argument("--dim", type=int, default=2048, help="feature dimension of the reference case")
    p.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    p.add_argument("--work", help=argparse.SUPPRESS)
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
    if args.child:
        case, *values = args.child
        if case == "imports":
            import proxyds.pipeline.score  # noqa: F401 - the baseline every case starts from
        elif case == "keys":
            child_keys(int(values[0]), int(values[1]), Path(args.work))
        else:
            child_reference(int(values[0]), int(values[1]), Path(args.work), whole="whole" in values)
        return 0
    if "build" not in args.case:
        return bounds(args, argv)
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


def bounds(args, argv) -> int:
    load_start = load()
    rows = measure_bounds(args.case, args.keys, args.reason, args.ref_large, args.ref_small, args.dim)
    lines = bounds_lines(rows)
    print("\n".join(lines))
    if args.doc:
        append_section(args.doc, [
            "## Peak RSS with a long skip reason, and of the reference features", "",
            f"- command: `{command_line(argv)}`",
            f"- machine: {machine()}",
            f"- load average (1, 5, 15 min): {load_start} at the start, {load()} at the end",
            "- each run is a child process (peak RSS = its ru_maxrss; CPU s = its user + system time); keys: "
            "scan of a synthetic source -> stage cache save + load -> manifest.parquet -> ManifestSampler; "
            "reference: 2,048-d features 256 a row batch (ReLU of a rank-32 signal + noise) -> spill, PCA (64) "
            "on a seeded sample of <= 10,000 rows, projection, hnsw index, one query batch", "",
            *lines, ""])
    return 0


if __name__ == "__main__":
    sys.exit(main())
