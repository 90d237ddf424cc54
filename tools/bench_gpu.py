"""GPU benchmark (issue 16): scoring throughput in fp32 vs bf16, exact vs hnsw neighbour search.

Three parts, one table, on one device (``tools/bench_gpu.sh`` runs it under a 5-minute limit):

1. **forward**: the build's scoring forward (``proxyds.pipeline.probes.score_batch``: pinned host
   batch -> device, the probe, float32 outputs back) of the *upper* probe of a CIFAR-like
   (``resnet20``, 3x32x32) and an ImageNet-like (``torchvision_resnet``: ResNet-50, 3x224x224)
   space, on synthetic tensors, for ``--seconds`` per row, in each precision;
2. **score_split**: the whole scoring pass of ``build`` (decode + both probes + bookkeeping)
   over synthetic JPEG shards (``tools/bench_scoring.py``'s data and ``Scorer``), per precision;
3. **neighbours**: ``--queries`` train features into ``--ref`` reference features (d=64,
   ``tools/bench_neighbors.py``'s ``make_features``): exact search on the CPU (``NeighborMap``),
   exact as blocked ``addmm`` on the device, hnswlib (``HNSW_DEFAULTS``) with recall@1.

Every row has wall seconds and CPU seconds (user + system of this process and its finished
DataLoader workers) side by side. ``--dry-run`` runs every part on the CPU with tiny sizes in
seconds (the CI check that the script works); its numbers mean nothing, and bf16 is skipped
there (it needs CUDA).

    tools/bench_gpu.sh                    # real run, --device cuda, <= 5 min
    tools/bench_gpu.sh --doc docs/benchmarks-images.md
    DRY_RUN=1 tools/bench_gpu.sh          # or: python tools/bench_gpu.py --dry-run
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import append_section, command_line, cpu_seconds, machine, table  # noqa: E402

log = logging.getLogger("bench_gpu")

PRECISIONS = ("fp32", "bf16")
FORWARD_SPACES = (("resnet20", "CIFAR-like"), ("torchvision_resnet", "ImageNet-like"))


class _Clock:
    """Wall and CPU seconds of a block, the device synchronised at both ends."""

    def __init__(self, device: torch.device):
        self.device = device

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.wall, self.cpu = time.perf_counter(), cpu_seconds()
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.wall, self.cpu = time.perf_counter() - self.wall, cpu_seconds() - self.cpu


def _row(part: str, what: str, device, precision: str, items: int, unit: str, clock: _Clock, note: str = "") -> dict:
    rate = items / clock.wall
    return {"part": part, "what": what, "device": str(device), "precision": precision, "items": items,
            "wall_s": clock.wall, "cpu_s": clock.cpu, "rate": f"{rate:,.0f} {unit}/s" if rate >= 100 else
            f"{rate:.3g} {unit}/s", "note": note}


def _skipped(part: str, what: str, device, precision: str, why: str) -> dict:
    return {"part": part, "what": what, "device": str(device), "precision": precision, "items": 0,
            "wall_s": None, "cpu_s": None, "rate": "-", "note": why}


def _usable(device: torch.device, precision: str) -> str | None:
    """None if ``precision`` runs on ``device``, else why not (the build's own rule)."""
    from proxyds.pipeline.probes import resolve_precision

    try:
        resolve_precision(device, precision)
    except ValueError as err:
        return str(err).split(": use ")[0]
    return None


def forward_rows(device: torch.device, *, dry_run: bool, seconds: float) -> list[dict]:
    """Part 1: the upper probe's scoring forward on synthetic pinned batches, per space and precision."""
    from proxyds.pipeline.probes import place_model, score_batch
    from proxyds.spaces import resolve_space

    rows = []
    for name, kind in FORWARD_SPACES:
        space = resolve_space(name)
        upper = space.probes(2, 10)[-1]
        shape = space.input_shape if not dry_run else (space.input_shape[0], 32, 32)  # any size fits a ResNet
        batch = (1024 if shape[-1] <= 64 else 256) if not dry_run else 4
        gen = torch.Generator().manual_seed(0)
        x = torch.randn((batch, *shape), generator=gen)
        x = x.pin_memory() if device.type == "cuda" else x
        labels = np.zeros(batch, np.int64)
        torch.manual_seed(0)
        model = place_model(space.build(upper, 10), device).eval()
        what = f"forward, upper probe {upper.name} ({kind} {'x'.join(map(str, shape))}), batch {batch}"
        for precision in PRECISIONS:
            why = _usable(device, precision)
            if why:
                rows.append(_skipped("forward", what, device, precision, why))
                continue
            for _ in range(1 if dry_run else 3):  # warm-up: cuDNN autotuning, allocator
                score_batch([model], x, feature_model=0, device=device, labels=labels, precision=precision)
            n = 0
            with _Clock(device) as clock:
                while n == 0 or (not dry_run and time.perf_counter() - clock.wall < seconds):
                    score_batch([model], x, feature_model=0, device=device, labels=labels, precision=precision)
                    n += batch
            rows.append(_row("forward", what, device, precision, n, "img", clock))
            log.info("%s %s: %s", what, precision, rows[-1]["rate"])
    return rows


def score_split_rows(device: torch.device, *, dry_run: bool, train: int, workers: int, root: Path) -> list[dict]:
    """Part 2: ``build``'s scoring pass over synthetic JPEG shards (decode + both probes), per precision."""
    import bench_scoring

    space = "resnet20" if not dry_run else "tiny_spaces:tiny2d"
    sizes = dict(train=train, val=max(16, train // 10), classes=10, size=(64, 128) if not dry_run else (32, 48),
                 per_shard=max(16, train // 16))
    data = bench_scoring.ensure_data(root / f"scoring-{train}", workers=max(1, workers), **sizes)
    scorer = bench_scoring.Scorer(data, space, batch_size=256 if not dry_run else 16, workers=workers,
                                  device=str(device))
    what = f"score_split, {space} probes {', '.join(c.name for c in scorer.configs)}, {train} JPEGs, {workers} workers"
    rows = []
    for precision in PRECISIONS:
        why = _usable(device, precision)
        if why:
            rows.append(_skipped("score_split", what, device, precision, why))
            continue
        scorer.plan = dataclasses.replace(scorer.plan, config=dataclasses.replace(scorer.plan.config,
                                                                                   precision=precision))
        if not dry_run:
            scorer.score(False)  # warm-up pass: page cache, worker start, kernels
        with _Clock(device) as clock:
            n = scorer.score(False)
        rows.append(_row("score_split", what, device, precision, n, "img", clock))
        log.info("%s %s: %s", what, precision, rows[-1]["rate"])
    return rows


def neighbor_rows(device: torch.device, *, queries: int, ref: int, dim: int, threads: int) -> list[dict]:
    """Part 3: exact (CPU NeighborMap; blocked addmm on the device) vs hnswlib, recall@1 against exact."""
    import bench_neighbors as bn
    from proxyds.selection.mapping import HNSW_DEFAULTS

    reference, _ = bn.make_features(ref, max(2, min(1000, ref // 50)), dim, seed=1)
    x, _ = bn.make_features(queries, max(2, min(1000, ref // 50)), dim, seed=2)
    what = f"{queries:,} queries into {ref:,} reference points, d={dim}"
    cpu = torch.device("cpu")
    with _Clock(cpu) as clock:
        exact = bn.run_exact(reference, x, "cpu")
    rows = [_row("neighbours", f"exact, NeighborMap (torch CPU, {torch.get_num_threads()} threads), {what}", cpu,
                 "fp32", queries, "query", clock, "recall@1 1 (the truth)")]
    if device.type == "cuda":
        bn.exact_blocked(reference, x[:1024], str(device))  # warm-up: context and kernels
        with _Clock(device) as clock:
            idx = bn.exact_blocked(reference, x, str(device))
        rows.append(_row("neighbours", f"exact, blocked addmm on {device}, {what}", device, "fp32", queries, "query",
                         clock, f"recall@1 {(idx == exact.idx).mean():.5f}"))
    M, efc, ef = HNSW_DEFAULTS["M"], HNSW_DEFAULTS["ef_construction"], HNSW_DEFAULTS["ef"]
    with _Clock(cpu) as clock:
        res = bn.run_hnsw(reference, x, M, efc, ef, threads)
    rows.append(_row("neighbours", f"hnsw M={M} ef_construction={efc} ef={ef} (fit 1 thread, query {threads}), "
                     f"{what}", cpu, "fp32", queries, "query", clock,
                     f"recall@1 {(res.idx == exact.idx).mean():.5f}; fit {res.fit_s:.1f} s"))
    for r in rows:
        log.info("%s: %.2f s", r["what"], r["wall_s"])
    return rows


def format_table(rows: list[dict]) -> list[str]:
    def s(v):
        return "-" if v is None else f"{v:.2f}"
    return table(["part", "what", "device", "precision", "items", "wall s", "CPU s", "rate", "note"],
                 [[r["part"], r["what"], r["device"], r["precision"], f"{r['items']:,}", s(r["wall_s"]),
                   s(r["cpu_s"]), r["rate"], r["note"]] for r in rows])


def _device_line(device: torch.device, dry_run: bool) -> str:
    if device.type == "cuda":
        cap = ".".join(map(str, torch.cuda.get_device_capability(device)))
        return (f"device {torch.cuda.get_device_name(device)} (compute capability {cap}), torch {torch.__version__}, "
                f"CUDA {torch.version.cuda}")
    dry = " (DRY RUN: tiny sizes, the numbers mean nothing)" if dry_run else ""
    return f"device cpu{dry}, torch {torch.__version__}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda", help="cuda or cuda:N (cpu only with --dry-run)")
    p.add_argument("--dry-run", action="store_true", help="every part on the CPU with tiny sizes, in seconds")
    p.add_argument("--seconds", type=float, default=8.0, help="timed seconds per forward row (default 8)")
    p.add_argument("--train", type=int, default=4000, help="synthetic JPEGs of the score_split part (default 4000)")
    p.add_argument("--workers", type=int, default=None, help="decoding workers (default min(8, cores - 1))")
    p.add_argument("--queries", type=int, default=200_000, help="neighbour queries (default 200,000)")
    p.add_argument("--ref", type=int, default=50_000, help="neighbour reference points (default 50,000)")
    p.add_argument("--threads", type=int, default=None, help="hnswlib query threads (default: cores)")
    p.add_argument("--data-root", default=None, help="where the synthetic JPEGs are generated (default: a temp dir)")
    p.add_argument("--doc", default=None, help="markdown file to append the table to")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.dry_run:
        args.device, args.train, args.queries, args.ref, args.workers = "cpu", 32, 2000, 400, 0
    elif not args.device.startswith("cuda") or not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: this benchmark needs a CUDA device (CUDA available: "
                         f"{torch.cuda.is_available()}); use --dry-run to check it on the CPU")
    device = torch.device(args.device)
    workers = args.workers if args.workers is not None else max(1, min(8, (os.cpu_count() or 2) - 1))
    threads = args.threads or os.cpu_count() or 1
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # tiny_spaces for the dry run
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="proxyds-bench-gpu-") as tmp:
        root = Path(args.data_root or tmp)
        rows = forward_rows(device, dry_run=args.dry_run, seconds=args.seconds)
        rows += score_split_rows(device, dry_run=args.dry_run, train=args.train, workers=workers, root=root)
        rows += neighbor_rows(device, queries=args.queries, ref=args.ref, dim=64 if not args.dry_run else 16,
                              threads=threads)
    lines = [_device_line(device, args.dry_run), f"machine: {machine(args.device)}", "", *format_table(rows), "",
             f"whole run: {time.perf_counter() - start:.0f} s wall"]
    print("\n".join(lines))
    if args.doc:
        append_section(args.doc, ["## GPU: fp32 vs bf16 scoring, exact vs hnsw search", "",
                                  f"- command: `{command_line(argv)}`", "", *lines, ""])
    return 0


if __name__ == "__main__":
    sys.exit(main())
