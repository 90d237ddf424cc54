"""Copy pass ÷ raw sequential read of ALL input bytes, the direct way beside the streamed one.

Copy pass: ``proxyds.pipeline.copy.copy_split`` as ``build`` runs it for the train split.
WebDataset in → WebDataset out (default): each input tar's headers are walked by seeking and
the kept members' bytes copied by the kernel (``os.copy_file_range``); the data of examples
not kept are never read. Parquet in → parquet out (``--input hf``): per shard, the row groups
holding kept rows are read and the kept rows taken as Arrow. Beside it, the streamed way it
replaced (``copy_split_streamed``: every input example read through the source's reader,
checked against the scan, the kept ones written from their bytes); in the warm-up round the
two outputs are compared byte for byte (the run stops if they differ).
Baseline: read every byte of every input train shard sequentially in 1 MiB blocks
(``readinto``, no parsing). Throughput is **all input bytes / wall seconds** (MB/s, 10^6
bytes) for every variant, so the ratio raw-read time ÷ copy time says how the pass compares
with just reading the input once; above 1 means faster than that read.

Selections: a seeded random ``ratio`` of the train examples (default 0.1 and 0.5). The
output goes to a temporary directory on the same file system as the data; it is not fsynced
(``copy_split`` does not; ``atomic_output_dir`` syncs once at the end of a build).

Two cache states: ``warm`` (each file read once before; everything from the page cache)
and ``cold`` (``sync; echo 3 > /proc/sys/vm/drop_caches`` before every timed run; needs root,
skipped with a note when it fails). Rounds alternate the order of the variants.

    python tools/bench_copy.py --doc docs/benchmarks-images.md   # 2000 images of ~110 kB, ~4 min

Data are generated once under ``--data-root`` (default /tmp/proxyds-bench/copy-N-LO-HI).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # tiny_spaces

from bench_common import append_section, command_line, load, machine, table  # noqa: E402
from bench_scoring import ensure_data  # noqa: E402

log = logging.getLogger("bench_copy")

GOALS = {0.1: 1.0, 0.5: 0.7}  # copy pass ÷ raw read of all input bytes, by ratio kept
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
    """The scanned train split of ``data`` (``wds`` tars or ``hf`` parquet shards) and a plan
    writing the same format, ready to run the copy pass."""

    def __init__(self, data: Path, out_root: Path, input_format: str = "wds"):
        from proxyds.config import BuildConfig
        from proxyds.pipeline.scan import scan
        from proxyds.sources import open_source

        self.out_root = out_root
        self.source = open_source(f"{input_format}:{data}", "train")
        self.plan = SimpleNamespace(format="wds" if input_format == "wds" else "parquet", on_error="raise",
                                    config=SimpleNamespace(rows_per_shard=BuildConfig.rows_per_shard))
        self.index = scan(self.source, "train", input_column="jpg" if input_format == "wds" else "image")
        self.names = self.source.info.class_names or tuple(str(c) for c in range(int(self.index.labels.max()) + 1))
        self.files = list(self.source.files)
        self.bytes = sum(os.path.getsize(f) for f in self.files)
        self.n = len(self.index)

    def keep(self, ratio: float, seed: int = 0) -> np.ndarray:
        keep = np.zeros(self.n, dtype=bool)
        keep[np.random.default_rng(seed).choice(self.n, max(1, round(ratio * self.n)), replace=False)] = True
        return keep

    def copy(self, keep: np.ndarray, streamed: bool = False) -> Path:
        """Run the copy pass (direct, or the streamed way) into a fresh directory; returns it."""
        from proxyds.pipeline.copy import copy_split, copy_split_streamed

        out = Path(tempfile.mkdtemp(prefix="copy-", dir=self.out_root))
        res = (copy_split_streamed if streamed else copy_split)(self.plan, self.source, self.index, keep,
                                                                out / "data", "train", self.names)
        if res["rows"] != int(keep.sum()):
            raise RuntimeError(f"copy wrote {res['rows']} rows, expected {int(keep.sum())}")
        return out


def digest(root: Path) -> str:
    """sha256 over every file's relative path and bytes under ``root``."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def measure(data: Path, *, ratios=(0.1, 0.5), rounds: int = 3, modes=("warm", "cold"),
            out_root: Path | None = None, input_format: str = "wds") -> tuple[list[dict], dict]:
    """Rows per (mode, variant): median seconds, MB/s and examples/s of input, ratio to the raw read.
    In each mode's warm-up round the direct and streamed outputs are compared byte for byte."""
    out_root = Path(out_root or data.parent.parent)  # same file system as the data
    copier = Copier(data, out_root, input_format)
    variants = {"raw read (1 MiB blocks)": lambda: raw_read(copier.files)}
    pairs = []
    for r in ratios:
        keep = copier.keep(r)
        pairs.append((f"copy_split (direct), ratio {r}", f"copy_split_streamed (before), ratio {r}"))
        variants[pairs[-1][0]] = lambda keep=keep: copier.copy(keep)
        variants[pairs[-1][1]] = lambda keep=keep: copier.copy(keep, streamed=True)
    names = list(variants)
    rows, notes = [], {}
    for mode in modes:
        if mode == "cold" and not drop_caches():
            notes["cold"] = "drop_caches not permitted here: cold runs skipped"
            continue
        times: dict[str, list[float]] = {n: [] for n in names}
        cpus: dict[str, list[float]] = {n: [] for n in names}
        digests: dict[str, str] = {}
        for rnd in range(rounds + 1):  # round 0: warm-up (imports, page cache for `warm`), not counted
            for name in (names if rnd % 2 == 0 else names[::-1]):
                if mode == "cold":
                    drop_caches()
                else:
                    subprocess.run(["sync"], check=True)  # previous outputs' write-back outside the timing
                start, cpu0 = time.perf_counter(), time.process_time()
                out = variants[name]()
                dt, cpu = time.perf_counter() - start, time.process_time() - cpu0
                if isinstance(out, Path):
                    if rnd == 0:
                        digests[name] = digest(out)
                    shutil.rmtree(out, ignore_errors=True)
                if rnd:
                    times[name].append(dt)
                    cpus[name].append(cpu)
                log.info("%s round %d %s: %.3fs (%.0f MB/s), %.3f CPU s, load %s", mode, rnd, name, dt,
                         copier.bytes / dt / 1e6, cpu, load())
        for direct, streamed in pairs:
            if digests[direct] != digests[streamed]:
                raise RuntimeError(f"{direct} and {streamed} wrote different bytes")
        base = statistics.median(times[names[0]])
        for name in names:
            med, med_cpu = statistics.median(times[name]), statistics.median(cpus[name])
            rows.append({"mode": mode, "variant": name, "median_s": med, "mb_s": copier.bytes / med / 1e6,
                         "ex_s": copier.n / med, "ratio": base / med, "all_s": times[name], "cpu_s": med_cpu,
                         "cpu_mb_s": copier.bytes / max(med_cpu, 1e-9) / 1e6})
    notes.update(bytes=copier.bytes, examples=copier.n, shards=len(copier.files))
    return rows, notes


def verdicts(rows: list[dict]) -> list[str]:
    """One line per direct row with a goal (ratio 0.1: >= 1.0, 0.5: >= 0.7), with its speed-up
    over the streamed way measured in the same rounds."""
    by = {(r["mode"], r["variant"]): r for r in rows}
    lines = []
    for r in rows:
        if not r["variant"].startswith("copy_split (direct)"):
            continue
        ratio = float(r["variant"].rsplit(" ", 1)[1])
        old = by[(r["mode"], r["variant"].replace("copy_split (direct)", "copy_split_streamed (before)"))]
        goal = GOALS.get(ratio)
        verdict = "" if goal is None else f" — goal {goal} {'met' if r['ratio'] >= goal else 'MISSED'}"
        lines.append(f"- {r['mode']}, ratio {ratio}: {r['ratio']:.2f} of the raw read{verdict}; "
                     f"{old['median_s'] / r['median_s']:.1f}× faster than the streamed way "
                     f"({old['ratio']:.3f} of the raw read), {old['cpu_s'] / max(r['cpu_s'], 1e-9):.1f}× less CPU")
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train", type=int, default=2000)
    p.add_argument("--val", type=int, default=100)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--size", default="560,640", help="min,max image side in px (default 560,640)")
    p.add_argument("--quality", type=int, default=93, help="JPEG quality (default 93: ~110 kB, ImageNet's mean)")
    p.add_argument("--images-per-shard", type=int, default=100)
    p.add_argument("--input", choices=("wds", "hf"), default="wds",
                   help="wds: WebDataset tars -> tars; hf: parquet shards -> parquet")
    p.add_argument("--data-root", default=None)
    p.add_argument("--ratios", default="0.1,0.5")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--modes", default="warm,cold", help="warm, cold or both")
    p.add_argument("--doc", default=None, help="markdown file to append the results to")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    lo, hi = (int(v) for v in args.size.split(","))
    root = Path(args.data_root or Path(tempfile.gettempdir()) / "proxyds-bench" /
                f"copy-{args.train}-{lo}-{hi}-q{args.quality}")
    data = ensure_data(root, train=args.train, val=args.val, classes=args.classes, size=(lo, hi),
                       per_shard=args.images_per_shard, quality=args.quality, formats=("wds", "hf"))
    if args.input == "hf":
        data = data.parent / "hf" / "data"
    load_start = load()
    rows, notes = measure(data, ratios=[float(r) for r in args.ratios.split(",")], rounds=args.rounds,
                          modes=args.modes.split(","), input_format=args.input)
    lines = table(["cache", "variant", "median s", "input MB/s", "input examples/s", "÷ raw read", "rounds s",
                   "CPU s", "input MB per CPU s"],
                  [[r["mode"], r["variant"], f"{r['median_s']:.3f}", f"{r['mb_s']:.0f}", f"{r['ex_s']:.0f}",
                    f"{r['ratio']:.3f}", ", ".join(f"{t:.3f}" for t in r["all_s"]), f"{r['cpu_s']:.3f}",
                    f"{r['cpu_mb_s']:.0f}"] for r in rows])
    found = verdicts(rows) + ([f"- {notes['cold']}"] if "cold" in notes else [])
    print("\n".join(lines + found))
    if args.doc:
        kind = "WebDataset shards, wds → wds" if args.input == "wds" else "parquet shards, hf → parquet"
        append_section(args.doc, [
            f"## Copy pass ÷ raw sequential read of all input bytes ({args.input})", "",
            f"- command: `{command_line(argv)}`",
            f"- machine: {machine()}",
            f"- load average (1, 5, 15 min): {load_start} at the start, {load()} at the end",
            f"- data: {notes['examples']:,} train synthetic JPEGs of {lo}-{hi} px (quality {args.quality}) in "
            f"{notes['shards']} {kind}, {notes['bytes'] / 1e6:.1f} MB ({notes['bytes'] / notes['examples'] / 1e3:.1f}"
            " kB per example)",
            "- throughput = all input bytes (or examples) / wall seconds; ratio = raw-read time ÷ variant time; median "
            f"of {args.rounds} rounds after a warm-up round, order alternating; CPU s = this process's user + system "
            "seconds; the direct and streamed outputs were byte-identical in every mode",
            "", *lines, "", *found, ""])
    return 0


if __name__ == "__main__":
    sys.exit(main())
