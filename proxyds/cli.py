"""Command line: a thin layer over the library (``proxyds.build``, ``proxyds.spaces``, …)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from proxyds.config import FORMATS, NEIGHBORS, BuildConfig
from proxyds.importance import DEFAULT_WEIGHTS
from proxyds.probes import PROBE_HPARAMS

__all__ = ["main"]


def _weights(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--weights takes four numbers c1,c2,c3,c4 (got {text!r})") from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="proxyds", description="Build data proxies for fast neural-architecture search.")
    p.add_argument("-v", "--verbose", action="store_true", help="log every stage's progress (INFO)")
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build", help="build a proxy dataset (paper Algorithm 1)",
                       description="Score every train example with two probe networks, map it to its nearest "
                                   "reference example, and draw a weighted subset of --ratio of the train split.")
    b.add_argument("dataset", help="a preset (see `proxyds datasets`) or a source: hf:DIR, hf:PATTERN-with-{split}, "
                                   "wds:BRACE-PATTERN or wds:DIR")
    b.add_argument("--ratio", type=float, required=True, help="fraction of the train split to keep, in (0, 1)")
    b.add_argument("--out", required=True, help="output directory (written atomically)")
    b.add_argument("--seed", type=int, default=0, help="seed of the weighted draw (default 0)")
    b.add_argument("--format", choices=FORMATS, default=None,
                   help="output format (default: parquet for hf input, wds for wds input)")
    b.add_argument("--data", default=None, help="where a preset's data lives, if not generated or cached")
    b.add_argument("--reference", default=None, help="source spec of the reference split, if not beside the train split")
    b.add_argument("--train-split", default=None, help="train split name (default: preset's, else 'train')")
    b.add_argument("--reference-split", default=None,
                   help="reference split that scores importance (default: preset's, else 'test')")
    b.add_argument("--label-column", default=None, help="label column / tar field (default: label for hf, cls for wds)")
    b.add_argument("--input-column", default=None, help="column / tar field the probes read (preset's by default)")
    b.add_argument("--key-column", default=None, help="hf column holding a unique key (default: the row index)")
    b.add_argument("--space", default=None, help="search space (see `proxyds spaces`; preset's by default)")
    b.add_argument("--weights", type=_weights, default=DEFAULT_WEIGHTS,
                   help="case weights c1,c2,c3,c4: both correct, both wrong, only the better probe correct, only the "
                        "worse probe correct; higher = more likely kept (default 2,1,6,1 as in the paper)")
    b.add_argument("--probes", type=int, default=2,
                   help="number of probes, spread over the space by MACs (default 2: cheapest and most expensive); "
                        "with k > 2 an example's importance is its mean case weight over all probe pairs")
    b.add_argument("--label-reduction", default="auto",
                   help="auto (default): drop the lowest-scoring classes when the proxy would average fewer than "
                        "--min-per-class examples per class; off; or N: keep the N highest-scoring classes")
    b.add_argument("--label-intermediate", type=float, default=None,
                   help="fraction of the train split the kept classes hold before the draw (default 2 x ratio)")
    b.add_argument("--min-per-class", type=int, default=100, help="auto label reduction threshold (default 100)")
    b.add_argument("--probe", action="append", default=[], metavar="ROLE=PATH", dest="probe_checkpoints",
                   help="load a trained probe instead of training it, e.g. --probe lower=r18.pt --probe upper=r50.pt "
                        "(a state_dict saved with torch.save; loaded with weights_only=True and shape-checked)")
    b.add_argument("--on-error", choices=("raise", "skip"), default="raise",
                   help="raise (default): stop at the first bad example, naming it; skip: leave it out, count it in "
                        "proxy.json and mark it in the manifest's status column")
    b.add_argument("--probe-epochs", type=int, default=PROBE_HPARAMS["epochs"], help="epochs of probe training")
    b.add_argument("--probe-seed", type=int, default=0, help="seed of probe training (default 0)")
    b.add_argument("--batch-size", type=int, default=PROBE_HPARAMS["batch_size"])
    b.add_argument("--lr", type=float, default=PROBE_HPARAMS["lr"], help="probe peak learning rate (Adam)")
    b.add_argument("--pca-components", type=int, default=64, help="PCA dimensions of the upper probe's features")
    b.add_argument("--neighbors", choices=NEIGHBORS, default="hnsw", help="nearest-neighbour search (default hnsw)")
    b.add_argument("--rows-per-shard", type=int, default=10_000, help="examples per output shard")
    b.add_argument("--workdir", default=None, help="cache for probe checkpoints (default $PROXYDS_CACHE/work)")
    b.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    b.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    b.add_argument("--workers", type=int, default=None,
                   help="decoding worker processes (default: 0 for 1-D inputs, else min(8, cores - 1))")

    sub.add_parser("spaces", help="list search spaces with their configs, MACs and params")
    sub.add_parser("datasets", help="list dataset presets")
    v = sub.add_parser("verify", help="check that a proxy directory is whole, consistent and readable",
                       description="Check every file's size and sha256 against proxy.json, the manifest against "
                                   "the shards' contents, and that datasets and webdataset read the splits. "
                                   "Exits 0 when all checks pass, 1 on any problem.")
    v.add_argument("out", help="the proxy directory (a build's --out)")
    return p


def _build(args) -> int:
    from proxyds.build import build

    fields = {k: getattr(args, k) for k in ("dataset", "out", "ratio", "seed", "format", "data", "reference",
                                            "train_split", "reference_split", "label_column", "input_column",
                                            "key_column", "space", "weights", "probes", "label_reduction",
                                            "label_intermediate", "min_per_class", "probe_checkpoints", "on_error",
                                            "probe_epochs", "probe_seed",
                                            "batch_size", "lr", "pca_components", "neighbors", "rows_per_shard",
                                            "workdir", "overwrite", "device", "workers")}
    result = build(BuildConfig(**fields))
    print(format_summary(result.summary, result.out, result.stage_seconds))
    return 0


def format_summary(s: dict, out, stage_seconds: dict) -> str:
    lines = [f"proxy written to {out}",
             f"  train {s['num_train']:,} -> selected {s['num_selected']:,}; reference {s['num_reference']:,}; "
             f"format {s['format']}"]
    for role, p in s["probes"].items():
        lines.append(f"  probe {role:6s} {p['config']:>12s}  MACs {p['macs']:>12,}  "
                     f"reference acc {p['reference_accuracy']:.4f}  train acc {p['train_accuracy']:.4f}")
    c = s["cases"]
    lines.append("  cases            " + "  ".join(f"{n:>20s}" for n in c["names"]))
    for row in ("reference", "train", "selected"):
        lines.append(f"  {row:16s} " + "  ".join(f"{v:>20,}" for v in c[row]))
    names = s["class_names"]
    per_class = ", ".join(f"{n}:{sel}/{tot}" for n, sel, tot in zip(names, s["classes"]["selected"], s["classes"]["train"]))
    lines.append(f"  selected/total per class: {per_class if len(names) <= 20 else f'{len(names)} classes'}")
    red = s.get("label_reduction", {})
    if red.get("applied"):
        lines.append(f"  label reduction: {red['reason']}; kept {len(red['kept_classes'])} classes, "
                     f"dropped {len(red['dropped_classes'])}")
    lines.append("  seconds per stage: " + ", ".join(f"{k} {v:.1f}" for k, v in stage_seconds.items()))
    return "\n".join(lines)


def _spaces(_args) -> int:
    from proxyds.spaces import get_space, list_spaces

    for name in list_spaces():
        space = get_space(name)
        print(f"{name}: input {tuple(space.input_shape)} - {space.description}")
        for c in space.configs:
            print(f"  {c.name:16s} MACs {space.macs(c):>14,}  params {space.params(c):>12,}")
    return 0


def _datasets(_args) -> int:
    from proxyds.sources import get_preset, list_presets

    for name in list_presets():
        p = get_preset(name)
        print(f"{name}: {p.description} (default space {p.space})")
    return 0


def _verify(args) -> int:
    from proxyds.verify import verify

    report = verify(args.out)
    for problem in report.problems:
        print(f"  {problem}")
    n = len(report.problems)
    verdict = "OK" if report.ok else f"FAILED, {n} problem{'s' if n != 1 else ''}"
    checked = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in report.checked.items())
    print(f"proxyds verify {report.out}: {verdict} (checked: {checked or 'nothing'})")
    return 0 if report.ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s: %(message)s")
    commands = {"build": _build, "spaces": _spaces, "datasets": _datasets, "verify": _verify}
    try:
        return commands[args.command](args)
    except (ValueError, TypeError, OSError, KeyError) as err:
        print(f"proxyds {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
