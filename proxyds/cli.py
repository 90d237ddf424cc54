"""Command line: a thin layer over the library (``proxyds.pipeline.build``, ``proxyds.spaces``, …)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import traceback
import types
import typing
from collections.abc import Sequence

from proxyds import __version__
from proxyds.config import BuildConfig

__all__ = ["main"]


def _weights(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--weights takes four numbers c1,c2,c3,c4 (got {text!r})") from None


_DEBUG_HELP = "also print the traceback of an input, settings or file error"
_VERBOSE_HELP = "log every stage's progress (INFO)"
_QUIET_HELP = "log errors only"


def _common() -> argparse.ArgumentParser:
    """Options every command also takes after its name (``proxyds build ... --debug``)."""
    c = argparse.ArgumentParser(add_help=False)
    c.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=_DEBUG_HELP)
    c.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=_VERBOSE_HELP)
    c.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help=_QUIET_HELP)
    return c


_PARSE = {"weights": {"type": _weights}, "append": {"action": "append"}}


def add_config_options(parser: argparse.ArgumentParser, config_class) -> None:
    """One option per field of ``config_class`` that carries help in its metadata (see
    ``proxyds.config._opt``): flag, type, default and help all come from the field, so a new
    setting is added in one place."""
    hints = typing.get_type_hints(config_class)
    for f in dataclasses.fields(config_class):
        meta = dict(f.metadata)
        if "help" not in meta:
            continue
        kind = _plain_type(hints[f.name])
        kwargs = {"help": meta.pop("help")}
        for key in ("choices", "metavar", "required"):
            if key in meta:
                kwargs[key] = meta[key]
        if meta.get("positional"):
            parser.add_argument(f.name, **kwargs)
            continue
        if "parse" in meta:
            kwargs.update(_PARSE[meta["parse"]])
        elif kind is bool:
            kwargs["action"] = "store_true"
        elif kind in (int, float):
            kwargs["type"] = kind
        if f.default is not dataclasses.MISSING:
            kwargs["default"] = [] if kwargs.get("action") == "append" else f.default
            if not any(f.default is x for x in (None, False, ())) and "default" not in kwargs["help"]:
                shown = ",".join(f"{x:g}" for x in f.default) if isinstance(f.default, tuple) else f.default
                kwargs["help"] += f" (default {shown})"
        parser.add_argument(meta.get("flag", "--" + f.name.replace("_", "-")), dest=f.name, **kwargs)


def _plain_type(hint):
    """``int`` for ``int | None`` and so on: the type argparse converts to."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1 else hint


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="proxyds", description="Build data proxies for fast neural-architecture search.",
        epilog="exit status: 0 ok; 1 an error in the input, settings or files (one line naming it); 2 a usage "
               "error; 3 an internal error (a bug: the traceback is printed, please report it)")
    p.add_argument("--version", action="version", version=f"proxyds {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help=_VERBOSE_HELP)
    p.add_argument("-q", "--quiet", action="store_true", help=_QUIET_HELP)
    p.add_argument("--debug", action="store_true", help=_DEBUG_HELP)
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build", parents=[_common()], help="build a proxy dataset (paper Algorithm 1)",
                       description="Score every train example with two probe networks, map it to its nearest "
                                   "reference example, and draw a weighted subset of --ratio of the train split.")
    add_config_options(b, BuildConfig)

    _evaluate_parser(sub)
    sub.add_parser("spaces", parents=[_common()], help="list search spaces with their configs, MACs and params")
    sub.add_parser("datasets", parents=[_common()], help="list dataset presets")
    v = sub.add_parser("verify", parents=[_common()],
                       help="check that a proxy directory is whole, consistent and readable",
                       description="Check every file's size and sha256 against proxy.json, the manifest against "
                                   "the shards' contents, and that datasets and webdataset read the splits. "
                                   "Exits 0 when all checks pass, 1 on any problem.")
    v.add_argument("out", help="the proxy directory (a build's --out)")
    return p


def _csv(kind):
    def parse(text: str):
        try:
            return tuple(kind(x) for x in text.split(",") if x)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated values (got {text!r})") from None
    return parse


def _range(text: str) -> tuple[int, int]:
    try:
        a, b = (int(x) for x in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected START:STOP row indices (got {text!r})") from None
    return a, b


def _keyvalue(text: str) -> tuple[str, float]:
    key, sep, value = text.partition("=")
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected KEY=NUMBER (got {text!r})") from None
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=NUMBER (got {text!r})")
    return key, int(number) if number.is_integer() and "." not in value and "e" not in value else number


def _evaluate_parser(sub) -> None:
    from proxyds.harness.evaluate import BENCHMARKS

    e = sub.add_parser(
        "evaluate", parents=[_common()], help="check whether proxies keep a search space's architecture ranking",
        description="Train every config of a search space on the full train split (several seeds) and on the "
                    "proxies of every selector x ratio x seed; report how well each proxy keeps the ranking "
                    "(Pearson, Spearman, Kendall, top-1, top-3, regret, paired difference vs random) next to the "
                    "zero-cost baselines (rank by MACs, by params) and the noise ceiling. Importance is scored on "
                    "reference split A; every accuracy is measured on a disjoint evaluation split B. Runs are "
                    "cached, so a rerun or a new selector only trains what is new. Writes results.json, "
                    "report.md and PNG figures to --out.")
    e.add_argument("benchmark", nargs="?", default="mnist1d-cnn", metavar="WHAT",
                   help="a named in-memory benchmark: mnist1d-cnn (the standard discriminative benchmark, default), "
                        "mnist1d-mlp (another MNIST-1D draw and the mlp1d space) or tiny (a smoke run of seconds); "
                        "or any dataset `proxyds build` takes: a preset (digits, mnist1d, cifar10, cifar100, "
                        "imagenet) or hf:DIR / wds:... (then --space is required), whose proxies are made by the "
                        "build itself and whose runs stream through its loaders; the options below override")
    e.add_argument("--out", required=True, help="report directory (results.json, report.md, *.png)")
    e.add_argument("--tiny", action="store_true",
                   help="a CI smoke run: benchmark 'tiny', or with a dataset 3 configs, 2 epochs, 2 seeds, one ratio")
    e.add_argument("--space", default=None, help="search space (see `proxyds spaces`; default cnn1d)")
    e.add_argument("--configs", type=_csv(str), default=None, help="comma-separated config names (default: all)")
    e.add_argument("--selectors", type=_csv(str), default=None,
                   help="comma-separated selectors (default: entropy,random,probe,class-balanced)")
    e.add_argument("--ratios", type=_csv(float), default=None, help="comma-separated proxy sizes (default 0.05,0.1)")
    e.add_argument("--full-seeds", type=int, default=None, help="full-data training seeds (default 3)")
    e.add_argument("--proxy-seeds", type=int, default=None, help="draw + training seeds per proxy (default 3)")
    e.add_argument("--epochs", type=int, default=None, help="training epochs, full data and proxy alike (default 10)")
    e.add_argument("--batch-size", type=int, default=None, help="training batch size (default 128)")
    e.add_argument("--lr", type=float, default=None, help="Adam peak learning rate, cosine to 0 (default 2e-3)")
    e.add_argument("--weight-decay", type=float, default=None, help="Adam weight decay (default 0)")
    e.add_argument("--proxy-epoch-scale", type=float, default=None, metavar="F",
                   help="proxy epochs = full epochs x F (default: the recommended proxy recipe's)")
    e.add_argument("--proxy-batch-power", type=float, default=None, metavar="P",
                   help="proxy batch = full batch x ratio^P, P in [0, 1] (default: the recommended recipe's)")
    e.add_argument("--proxy-lr-batch-power", type=float, default=None, metavar="Q",
                   help="proxy lr = full lr x (proxy batch / full batch)^Q (default: the recommended recipe's)")
    e.add_argument("--train-size", type=int, default=None, dest="train", metavar="N",
                   help="train = the first N examples of the generator's train pool (default 8000)")
    e.add_argument("--reference-rows", type=_range, default=None, dest="reference", metavar="START:STOP",
                   help="reference split A (scores importance) = test-pool rows START:STOP (default 0:5000)")
    e.add_argument("--evaluation-rows", type=_range, default=None, dest="evaluation", metavar="START:STOP",
                   help="evaluation split B (every accuracy) = test-pool rows START:STOP (default 5000:15000)")
    e.add_argument("--mnist1d", type=_keyvalue, action="append", default=None, metavar="KEY=VALUE",
                   help="override an mnist1d generator argument, e.g. corr_noise_scale=0.35 (repeatable)")
    e.add_argument("--workers", type=int, default=None, help="training processes (default 1)")
    e.add_argument("--threads", type=int, default=None,
                   help="torch threads per training process (default 1: fastest for small models on shared CPUs)")
    e.add_argument("--cache", default=None, help="run cache directory (default $PROXYDS_CACHE/evaluate)")
    e.add_argument("--device", default=None, help="cpu (default), auto, cuda or cuda:N")
    _evaluate_source_options(e)


def _evaluate_source_options(e) -> None:
    """The options of `proxyds evaluate DATASET` (a preset or hf:/wds: source)."""
    g = e.add_argument_group("a dataset as `proxyds build` takes it")
    g.add_argument("--data", default=None, help="where a preset's data lives (as build's --data)")
    for flag, what in (("--input-column", "column / tar field the models read"),
                       ("--label-column", "label column / tar field"), ("--train-split", "train split name"),
                       ("--reference-split", "held-out split name, cut into reference split A and evaluation "
                                             "split B")):
        g.add_argument(flag, default=None, help=f"{what} (as build's {flag})")
    g.add_argument("--evaluation-fraction", type=float, default=None, metavar="F",
                   help="evaluation split B = a class-stratified fraction F of the held-out split (every accuracy); "
                        "reference split A = the rest (scores importance) (default 0.5)")
    g.add_argument("--split-seed", type=int, default=None, help="seed of the A/B cut (default 0)")
    g.add_argument("--build", type=_setting, action="append", default=None, metavar="FIELD=VALUE",
                   help="another build setting for every proxy, e.g. probe_epochs=8, label_reduction=off, "
                        "workers=0 (repeatable; the names of build's options with _ for -)")


def _setting(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected FIELD=VALUE (got {text!r})")
    for kind in (int, float):
        try:
            return key.replace("-", "_"), kind(value)
        except ValueError:
            pass
    return key.replace("-", "_"), {"true": True, "false": False}.get(value.lower(), value)


_SOURCE_OPTIONS = ("data", "input_column", "label_column", "train_split", "reference_split", "evaluation_fraction",
                   "split_seed", "build")


def _evaluate(args) -> int:
    from proxyds.harness.evaluate import BENCHMARKS, EvaluateConfig, evaluate

    fields = {k: getattr(args, k) for k in ("space", "configs", "selectors", "ratios", "full_seeds", "proxy_seeds",
                                            "epochs", "batch_size", "lr", "weight_decay", "train", "reference",
                                            "evaluation", "workers", "threads", "cache", "device",
                                            "proxy_epoch_scale", "proxy_batch_power", "proxy_lr_batch_power")}
    fields["generator"] = dict(args.mnist1d) if args.mnist1d else None
    if args.benchmark in BENCHMARKS:
        given = [k for k in _SOURCE_OPTIONS if getattr(args, k) is not None]
        if given:
            raise ValueError(f"--{given[0].replace('_', '-')} is for a dataset (a preset or hf:/wds: source), not "
                             f"the in-memory benchmark {args.benchmark!r}")
        cfg = EvaluateConfig.from_benchmark("tiny" if args.tiny else args.benchmark, args.out, **fields)
    else:
        build = dict(args.build or ())
        build.update({k: getattr(args, k) for k in ("input_column", "label_column", "train_split", "reference_split")
                      if getattr(args, k) is not None})
        cfg = EvaluateConfig.from_source(args.benchmark, args.out, tiny=args.tiny, data=args.data, build=build,
                                         evaluation_fraction=args.evaluation_fraction, split_seed=args.split_seed,
                                         **fields)
    print(format_evaluation(evaluate(cfg), cfg.out))
    return 0


def format_evaluation(r: dict, out) -> str:
    ce, b = r["noise_ceiling"], r["baselines"]
    lines = [f"report written to {out} (report.md, results.json, figures)",
             f"  Spearman vs full data (accuracy on split B): noise ceiling {ce['spearman']:.3f}, "
             f"rank by MACs {b['macs']['spearman']:.3f}, rank by params {b['params']['spearman']:.3f}"]
    training = r["settings"].get("proxy_training", {})
    if training:
        lines.append("  proxy training: " + "; ".join(
            f"{float(ratio) * 100:g}%: {t['epochs']} epochs, batch {t['batch_size']}, lr {t['lr']:.3g}"
            for ratio, t in training.items()))
    for sel, by_ratio in r["proxies"].items():
        cells = [f"{float(ratio) * 100:g}%: {e['metrics']['spearman']['mean']:.3f} ± "
                 f"{e['metrics']['spearman']['std']:.3f}" for ratio, e in by_ratio.items()]
        lines.append(f"  {sel:16s} " + "   ".join(cells))
    return "\n".join(lines)


def _build(args) -> int:
    from proxyds.pipeline.build import build

    fields = {f.name: getattr(args, f.name) for f in dataclasses.fields(BuildConfig) if hasattr(args, f.name)}
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
    if "selector" in s:
        lines.append(f"  selector: {s['selector']}")
    if "proxy_training" in s:
        lines.append(f"  recommended proxy training: {s['proxy_training']['text']}")
        lines.append(f"    e.g. {s['proxy_training']['example'].split(': ', 1)[-1]}")
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
    from proxyds.presets import get_preset, list_presets

    for name in list_presets():
        p = get_preset(name)
        print(f"{name}: {p.description} (default space {p.space})")
    return 0


def _verify(args) -> int:
    from proxyds.verifier.check import verify

    report = verify(args.out)
    for problem in report.problems:
        print(f"  {problem}")
    n = len(report.problems)
    verdict = "OK" if report.ok else f"FAILED, {n} problem{'s' if n != 1 else ''}"
    checked = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in report.checked.items())
    print(f"proxyds verify {report.out}: {verdict} (checked: {checked or 'nothing'})")
    return 0 if report.ok else 1


# Exit codes (also in --help and the README): 0 ok, 1 a user or data error (one line on stderr),
# 2 a usage error (argparse), 3 an unexpected error, i.e. a bug in proxyds (traceback + report).
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_BUG = 0, 1, 2, 3

# What a user can cause and fix: bad values, settings and data (ValueError, BadInput included),
# and files or directories that are missing, present, unreadable or unwritable (OSError).
# Anything else (TypeError, KeyError, AttributeError, ...) is a bug and is reported as one.
_USER_ERRORS = (ValueError, OSError)
_REPORT = "this is a bug in proxyds; please report it with the command and the traceback above"


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (e.g. captured in a test)
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives until the process ends


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; see ``EXIT_*`` for what the exit codes mean."""
    args = _parser().parse_args(argv)
    level = logging.INFO if args.verbose else logging.ERROR if args.quiet else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(name)s: %(message)s")
    commands = {"build": _build, "evaluate": _evaluate, "spaces": _spaces, "datasets": _datasets, "verify": _verify}
    try:
        code = commands[args.command](args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except BrokenPipeError:  # `proxyds spaces | head`: the reader left; not an error
        _silence_stdout()
        return 0
    except _USER_ERRORS as err:
        if args.debug:
            traceback.print_exc()
        message = " ".join(str(err).split()) or type(err).__name__  # one line, whatever the message holds
        print(f"proxyds {args.command}: error: {message}", file=sys.stderr)
        return EXIT_ERROR
    except Exception:  # noqa: BLE001 - a bug: show everything and ask for a report
        traceback.print_exc()
        print(f"proxyds {args.command}: internal error: {_REPORT}", file=sys.stderr)
        return EXIT_BUG


if __name__ == "__main__":
    sys.exit(main())
