"""Scoring pass ÷ bare loop: how much of the decode + forward speed ``build`` keeps.

Candidate: ``proxyds.pipeline.score.score_split`` over the train split of synthetic ImageNet-like
WebDataset shards, both probes, with its bookkeeping (``SplitLoader`` positions and key
checks, bad-input rule, finite check, scatter of predictions by position, and the
``on_features`` callback). Two callbacks are measured:

- ``score_split`` (collect): the callback keeps the features (as ``score_reference`` does);
- ``score_split + NeighborMap``: the callback queries a ``NeighborMap`` fitted on the
  reference split's features (PCA + hnswlib, as ``score_train`` does). The bare loop does
  no neighbour search, so this row also shows what the mapping costs.

Baseline (the minimum work on the same shards): ``webdataset.WebDataset`` over the same
tars (split over workers by shard), ``decode_input`` on each ``.jpg``, ``np.stack`` into
batches of the same size, each probe's forward + argmax, predictions copied to the host.

Both use a torch ``DataLoader`` with the same number of workers; the probes are the search
space's cheapest and most expensive configs, randomly initialised (throughput does not
depend on the weights). Rounds alternate the order of the variants; the table gives the
median throughput over rounds and the ratio of medians (goal: scoring ÷ bare >= 0.85).

    python tools/bench_scoring.py --doc docs/benchmarks-images.md     # ~3 min on 2 busy cores
    python tools/bench_scoring.py --space resnet20 --train 1000 ...   # heavier probes
    python tools/bench_scoring.py --device cuda ...                   # GPU session

Data are generated once (``tools/make_synthetic_imagenet.py``) under ``--data-root``
(default /tmp/proxyds-bench/scoring-N-LO-HI) and reused.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # tiny_spaces

from bench_common import append_section, command_line, cpu_seconds, load, machine, table  # noqa: E402

log = logging.getLogger("bench_scoring")

GOAL = 0.85


def ensure_data(root: Path, *, train: int, val: int, classes: int, size: tuple[int, int], per_shard: int,
                workers: int = 2, quality: int = 90, formats: tuple[str, ...] = ("wds",)) -> Path:
    """``root/wds`` with train/val shards (and ``root/hf`` parquet when ``formats`` has "hf"),
    generated once (a ``.done`` marker says it is whole)."""
    if not (root / ".done").exists():
        from make_synthetic_imagenet import make_synthetic_imagenet

        log.info("generating %d + %d images of %s px into %s", train, val, size, root)
        make_synthetic_imagenet(root, num_train=train, num_val=val, num_classes=classes, size=size,
                                formats=formats, images_per_shard=per_shard, workers=workers, quality=quality)
        (root / ".done").write_text("ok\n")
    return root / "wds"


def _identity(x):
    return x


class _Decode:
    def __init__(self, shape):
        self.shape = tuple(shape)

    def __call__(self, sample):
        from proxyds.sources.decode import decode_input

        return decode_input(sample["jpg"], self.shape, name="jpg")


def _keep(feats):
    return (feats,)


def _stack(xs):
    return torch.from_numpy(np.stack(xs))


def bare_loop(files: list[str], models, shape, *, batch_size: int, workers: int, device) -> int:
    """The minimum: read tars, decode + transform, batch, forward both probes. Returns examples seen."""
    import webdataset as wds
    from torch.utils.data import DataLoader

    ds = (wds.WebDataset(files, shardshuffle=False, nodesplitter=_identity, workersplitter=wds.split_by_worker,
                         empty_check=False)
          .map(_Decode(shape)).batched(batch_size, collation_fn=_stack, partial=True))
    loader = DataLoader(ds, batch_size=None, num_workers=workers, prefetch_factor=4 if workers else None)
    n = 0
    with torch.inference_mode():
        for x in loader:
            x = x.to(device, non_blocking=True)
            preds = [m(x).argmax(1) for m in models]
            torch.stack(preds).cpu()
            n += len(x)
    return n


class Scorer:
    """The build's side: a resolved plan, the scanned train index, the probes, and a fitted map."""

    def __init__(self, data: Path, space: str, *, batch_size: int, workers: int, device: str):
        from proxyds.config import BuildConfig
        from proxyds.pipeline.plan import resolve
        from proxyds.pipeline.probes import pick_device, place_model
        from proxyds.pipeline.scan import class_names, scan
        from proxyds.pipeline.score import score_split
        from proxyds.selection.mapping import NeighborMap

        self._score_split = score_split
        self.device = pick_device(device)
        cfg = BuildConfig(dataset="imagenet", data=str(data), out=Path(tempfile.gettempdir()) / "unused", ratio=0.1,
                          space=space, workers=workers, batch_size=batch_size, device=device)
        self.plan = resolve(cfg)
        self.index = scan(self.plan.train, "train", input_column=self.plan.input_column)
        ref = scan(self.plan.reference, "reference", input_column=self.plan.input_column)
        names = class_names(self.plan.train.info, self.plan.reference.info, self.index, ref, "raise")
        sp = self.plan.space
        torch.manual_seed(0)
        self.configs = sp.probes(2, len(names))
        self.models = [place_model(sp.build(c, len(names)), self.device).eval() for c in self.configs]  # as build
        (ref_feats,) = self._score_split(self.plan, self.plan.reference, ref, self.models, self.device,
                                         what="reference", on_features=_keep).results
        self.nmap = NeighborMap(min(64, ref_feats.shape[1], len(ref_feats)), "hnsw", seed=0).fit(ref_feats)
        self.files = list(self.plan.train.files)
        self.shape = sp.input_shape
        self.num_ok = int(self.index.ok.sum())

    def score(self, mapping: bool) -> int:
        scores = self._score_split(self.plan, self.plan.train, self.index, self.models, self.device,
                                   what="train", on_features=self.nmap.query if mapping else _keep)
        preds, scored, out = scores.preds, scores.positions, scores.results
        if not (preds >= 0).all() or len(out[0]) != len(scored):
            raise RuntimeError("scoring pass left examples unscored")
        return len(scored)

    def bare(self, workers: int, batch_size: int) -> int:
        return bare_loop(self.files, self.models, self.shape, batch_size=batch_size, workers=workers,
                         device=self.device)


def measure(data: Path, *, space: str = "tiny_spaces:tiny2d", workers=(1, 0), rounds: int = 3,
            batch_size: int = 128, device: str = "cpu", mapping: bool = True) -> list[dict]:
    """Throughput (examples/s) of each variant per worker count: one row per (workers, variant)
    with the median over ``rounds`` and the ratio to the bare loop's median."""
    rows = []
    for w in workers:
        scorer = Scorer(data, space, batch_size=batch_size, workers=w, device=device)
        variants = {"bare loop": lambda: scorer.bare(w, batch_size),
                    "score_split (collect)": lambda: scorer.score(False)}
        if mapping:
            variants["score_split + NeighborMap"] = lambda: scorer.score(True)
        names = list(variants)
        times = {n: [] for n in names}
        cpus = {n: [] for n in names}
        for r in range(rounds + 1):  # round 0 warms the page cache, imports and allocator; not counted
            order = names if r % 2 == 0 else names[::-1]
            for name in order:
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
                start, cpu0 = time.perf_counter(), cpu_seconds()
                n = variants[name]()
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
                dt, cpu = time.perf_counter() - start, cpu_seconds() - cpu0
                if n != scorer.num_ok:
                    raise RuntimeError(f"{name} saw {n} examples, expected {scorer.num_ok}")
                if r:
                    times[name].append(dt)
                    cpus[name].append(cpu)
                log.info("workers=%d round %d %s: %.2fs (%.0f ex/s), %.2f CPU s, load %s", w, r, name, dt, n / dt,
                         cpu, load())
        base, base_cpu = statistics.median(times["bare loop"]), statistics.median(cpus["bare loop"])
        for name in names:
            med = statistics.median(times[name])
            paired = statistics.median(b / t for b, t in zip(times["bare loop"], times[name]))
            rows.append({"workers": w, "variant": name, "examples": scorer.num_ok, "median_s": med,
                         "throughput": scorer.num_ok / med, "ratio": base / med, "paired_ratio": paired,
                         "cpu_s": statistics.median(cpus[name]),
                         "cpu_ratio": base_cpu / statistics.median(cpus[name]),
                         "all_s": times[name], "probes": [c.name for c in scorer.configs]})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train", type=int, default=3000, help="train images (default 3000)")
    p.add_argument("--val", type=int, default=300, help="reference (val) images")
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--size", default="64,128", help="min,max image side in px (default 64,128)")
    p.add_argument("--images-per-shard", type=int, default=250)
    p.add_argument("--data-root", default=None, help="where the synthetic data live / are generated")
    p.add_argument("--space", default="tiny_spaces:tiny2d",
                   help="search space of the probes (default tiny_spaces:tiny2d, 16x16; resnet20 is 32x32)")
    p.add_argument("--workers", default="1,0", help="comma-separated DataLoader worker counts, same for both sides")
    p.add_argument("--rounds", type=int, default=3, help="timed rounds per variant (after one warm-up round)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--no-mapping", action="store_true", help="skip the score_split + NeighborMap variant")
    p.add_argument("--doc", default=None, help="markdown file to append the results to (e.g. docs/benchmarks-images.md)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    lo, hi = (int(v) for v in args.size.split(","))
    root = Path(args.data_root or Path(tempfile.gettempdir()) / "proxyds-bench" / f"scoring-{args.train}-{lo}-{hi}")
    data = ensure_data(root, train=args.train, val=args.val, classes=args.classes, size=(lo, hi),
                       per_shard=args.images_per_shard)
    load_start = load()
    workers = [int(w) for w in args.workers.split(",")]
    rows = measure(data, space=args.space, workers=workers, rounds=args.rounds, batch_size=args.batch_size,
                   device=args.device, mapping=not args.no_mapping)
    lines = table(["workers", "variant", "median s", "examples/s", "÷ bare (medians)", "÷ bare (paired)", "rounds s",
                   "CPU s", "÷ bare (CPU s)"],
                  [[r["workers"], r["variant"], f"{r['median_s']:.2f}", f"{r['throughput']:.0f}",
                    f"{r['ratio']:.3f}", f"{r['paired_ratio']:.3f}", ", ".join(f"{t:.2f}" for t in r["all_s"]),
                    f"{r['cpu_s']:.2f}", f"{r['cpu_ratio']:.3f}"]
                   for r in rows])
    print("\n".join(lines))
    verdicts = []
    for r in rows:
        if r["variant"] == "bare loop":
            continue
        ok = r["ratio"] >= GOAL
        verdicts.append(f"- workers={r['workers']}, {r['variant']}: {r['ratio']:.3f} of the bare loop — goal "
                        f"{GOAL} {'met' if ok else 'MISSED'}")
    print("\n".join(verdicts))
    if args.doc:
        append_section(args.doc, [
            "## Scoring pass ÷ bare decode + forward loop", "",
            f"- command: `{command_line(argv)}`",
            f"- machine: {machine(args.device)}; device {args.device}",
            f"- load average (1, 5, 15 min): {load_start} at the start, {load()} at the end",
            f"- data: {args.train} train / {args.val} val synthetic JPEGs of {lo}-{hi} px, {args.classes} classes, "
            f"{args.images_per_shard} per WebDataset shard; space `{args.space}`, probes {rows[0]['probes']} "
            f"(random init), batch {args.batch_size}",
            f"- {args.rounds} timed rounds after one warm-up round, variant order alternating; throughput = "
            "train examples / wall time of the whole pass (DataLoader start included, both sides); CPU s = user + "
            "system seconds of the process and its DataLoader workers (bare CPU ÷ variant CPU: the overhead with "
            "other sessions' load factored out)", "",
            *lines, "", *verdicts, ""])
    return 0


if __name__ == "__main__":
    sys.exit(main())
