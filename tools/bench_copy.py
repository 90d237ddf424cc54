"""Copy pass ÷ raw sequential read of the input shards (goal: >= 0.7).

Copy pass: ``proxyds.pipeline.write._copy_split`` as ``build`` runs it for the train split,
WebDataset in → WebDataset out: it streams EVERY input example (``read_examples``, checking
keys against the scan) and writes the selected ones, original bytes, into even shards.
Baseline: read every byte of every input train tar sequentially in 1 MiB blocks
(``readinto``, no parsing). Both touch all input bytes, so throughput is defined as
**input bytes / wall seconds** (MB/s, 10^6 bytes), and the ratio is
raw-read time ÷ copy time. Also shown: examples/s (all input examples / wall seconds) and
``read_examples`` alone (the parse, no writing) to show where the time goes.

Selections: a seeded random ``ratio`` of the train examples (default 0.1 and 0.5), so the
written shards hold that fraction of the input bytes. The output goes to a temporary
directory on the same file system as the data; it is not fsynced (``_copy_split`` does
not; ``atomic_output_dir`` syncs once at the end of a build, outside this pass).

Two cache states: ``warm`` (each file read once before; everything from the page cache)
and ``cold`` (``sync; echo 3 > /proc/sys/vm/drop_caches`` before every timed run; needs root,
skipped with a note when it fails). Rounds alternate the order of the variants.

    python tools/bench_copy.py --doc docs/benchmarks-images.md   # 2000 images of 300-500 px, ~3 min

Data are generated once under ``--data-root`` (default /tmp/proxyds-bench/copy-N-LO-HI).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # tiny_spaces

from bench_common import append_section, command_line, load, machine, table  # noqa: E402
from bench_scoring import ensure_data  # noqa: E402

log = logging.getLogger("bench_copy")

GOAL = 0.7
BLOCK = 1 << 20


def raw_read(files: list[str]) -> int:
    """Read every byte of ``files`` in 1 MiB blocks; returns the bytes read."""
    buf = bytearray(BLOCK)
    view = memoryview(buf)
    total = 0
    for f in files:
        with open(f, "rb", buffering=0) as fh:
            while True:
                n = fh.readinto(view)
                if not n:
                    break
                total += n
    return total


def drop_caches() -> bool:
    """Flush dirty pages and drop the page cache; False when not permitted."""
    try:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


class Copier:
    """A resolved wds→wds plan and the scanned train split, ready to run ``_copy_split``."""

    def __init__(self, data: Path, out_root: Path):
        from proxyds.config import BuildConfig
        from proxyds.pipeline.plan import resolve
        from proxyds.pipeline.scan import class_names, scan

        self.out_root = out_root
        cfg = BuildConfig(dataset="imagenet", data=str(data), out=out_root / "unused", ratio=0.1, format="wds",
                          space="tiny_spaces:tiny2d")
        self.plan = resolve(cfg)
        self.index = scan(self.plan.train, "train", input_column=self.plan.input_column)
        ref = scan(self.plan.reference, "reference", input_column=self.plan.input_column)
        self.names = class_names(self.plan.train.info, self.plan.reference.info, self.index, ref, "raise")
        self.files = list(self.plan.train.files)
        self.bytes = sum(os.path.getsize(f) for f in self.files)
        self.n = len(self.index)

    def keep(self, ratio: float, seed: int = 0) -> np.ndarray:
        keep = np.zeros(self.n, dtype=bool)
        keep[np.random.default_rng(seed).choice(self.n, max(1, round(ratio * self.n)), replace=False)] = True
        return keep

    def copy(self, keep: np.ndarray) -> int:
        """Run the copy pass into a fresh directory; returns bytes written (the directory is removed)."""
        from proxyds.pipeline.write import _copy_split

        out = Path(tempfile.mkdtemp(prefix="copy-", dir=self.out_root))
        try:
            res = _copy_split(self.plan, self.plan.train, self.index, keep, out / "data", "train", self.names)
            if res["rows"] != int(keep.sum()):
                raise RuntimeError(f"copy wrote {res['rows']} rows, expected {int(keep.sum())}")
            return sum(p.stat().st_size for p in (out / "data").iterdir())
        finally:
            shutil.rmtree(out, ignore_errors=True)

    def parse(self) -> int:
        from proxyds.pipeline.scan import read_examples

        return sum(1 for _ in read_examples(self.plan.train, "train", "raise"))


def measure(data: Path, *, ratios=(0.1, 0.5), rounds: int = 3, modes=("warm", "cold"),
            out_root: Path | None = None) -> tuple[list[dict], dict]:
    """Rows per (mode, variant): median seconds, MB/s and examples/s of input, ratio to the raw read."""
    out_root = Path(out_root or data.parent.parent)  # same file system as the data
    copier = Copier(data, out_root)
    variants = {"raw read (1 MiB blocks)": lambda: raw_read(copier.files)}
    for r in ratios:
        keep = copier.keep(r)
        variants[f"_copy_split, ratio {r}"] = lambda keep=keep: copier.copy(keep)
    variants["read_examples only (no write)"] = copier.parse
    names = list(variants)
    rows, notes = [], {}
    for mode in modes:
        if mode == "cold" and not drop_caches():
            notes["cold"] = "drop_caches not permitted here: cold runs skipped"
            continue
        times: dict[str, list[float]] = {n: [] for n in names}
        cpus: dict[str, list[float]] = {n: [] for n in names}
        for rnd in range(rounds + 1):  # round 0: warm-up (imports, page cache for `warm`), not counted
            for name in (names if rnd % 2 == 0 else names[::-1]):
                if mode == "cold":
                    drop_caches()
                else:
                    subprocess.run(["sync"], check=True)  # previous outputs' write-back outside the timing
                start, cpu0 = time.perf_counter(), time.process_time()
                variants[name]()
                dt, cpu = time.perf_counter() - start, time.process_time() - cpu0
                if rnd:
                    times[name].append(dt)
                    cpus[name].append(cpu)
                log.info("%s round %d %s: %.2fs (%.0f MB/s), %.3f CPU s, load %s", mode, rnd, name, dt,
                         copier.bytes / dt / 1e6, cpu, load())
        base, base_cpu = statistics.median(times[names[0]]), statistics.median(cpus[names[0]])
        for name in names:
            med, med_cpu = statistics.median(times[name]), statistics.median(cpus[name])
            rows.append({"mode": mode, "variant": name, "median_s": med, "mb_s": copier.bytes / med / 1e6,
                         "ex_s": copier.n / med, "ratio": base / med, "all_s": times[name], "cpu_s": med_cpu,
                         "cpu_mb_s": copier.bytes / max(med_cpu, 1e-9) / 1e6})
    notes.update(bytes=copier.bytes, examples=copier.n, shards=len(copier.files))
    return rows, notes


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train", type=int, default=2000)
    p.add_argument("--val", type=int, default=100)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--size", default="300,500", help="min,max image side in px (default 300,500: ImageNet-like)")
    p.add_argument("--images-per-shard", type=int, default=100)
    p.add_argument("--data-root", default=None)
    p.add_argument("--ratios", default="0.1,0.5")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--modes", default="warm,cold", help="warm, cold or both")
    p.add_argument("--doc", default=None, help="markdown file to append the results to")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    lo, hi = (int(v) for v in args.size.split(","))
    root = Path(args.data_root or Path(tempfile.gettempdir()) / "proxyds-bench" / f"copy-{args.train}-{lo}-{hi}")
    data = ensure_data(root, train=args.train, val=args.val, classes=args.classes, size=(lo, hi),
                       per_shard=args.images_per_shard)
    load_start = load()
    rows, notes = measure(data, ratios=[float(r) for r in args.ratios.split(",")], rounds=args.rounds,
                          modes=args.modes.split(","))
    lines = table(["cache", "variant", "median s", "input MB/s", "input examples/s", "÷ raw read", "rounds s",
                   "CPU s", "input MB per CPU s"],
                  [[r["mode"], r["variant"], f"{r['median_s']:.3f}", f"{r['mb_s']:.0f}", f"{r['ex_s']:.0f}",
                    f"{r['ratio']:.3f}", ", ".join(f"{t:.3f}" for t in r["all_s"]), f"{r['cpu_s']:.3f}",
                    f"{r['cpu_mb_s']:.0f}"] for r in rows])
    verdicts = [f"- {r['mode']}, {r['variant']}: {r['ratio']:.3f} of the raw read — goal {GOAL} "
                f"{'met' if r['ratio'] >= GOAL else 'MISSED'}" for r in rows if r["variant"].startswith("_copy")]
    if "cold" in notes:
        verdicts.append(f"- {notes['cold']}")
    print("\n".join(lines + verdicts))
    if args.doc:
        append_section(args.doc, [
            "## Copy pass ÷ raw sequential read of the input shards", "",
            f"- command: `{command_line(argv)}`",
            f"- machine: {machine()}",
            f"- load average (1, 5, 15 min): {load_start} at the start, {load()} at the end",
            f"- data: {notes['examples']:,} train synthetic JPEGs of {lo}-{hi} px in {notes['shards']} WebDataset "
            f"shards, {notes['bytes'] / 1e6:.1f} MB ({notes['bytes'] / notes['examples'] / 1e3:.1f} kB per example); "
            "wds → wds",
            "- throughput = all input bytes (or examples) / wall seconds: both sides read every input byte; ratio = "
            f"raw-read time ÷ variant time; median of {args.rounds} rounds after a warm-up round, order alternating; "
            "CPU s = this process's user + system seconds (what the pass would cost on an idle core)",
            "", *lines, "", *verdicts, ""])
    return 0


if __name__ == "__main__":
    sys.exit(main())
