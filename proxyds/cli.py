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


def _evaluate_parser(sub) -> None:
    from proxyds.harness.command import add_evaluate_parser

    add_evaluate_parser(sub, _common())


def _evaluate(args) -> int:
    from proxyds.harness.command import run_evaluate

    return run_evaluate(args)


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
