"""Command line: a thin layer over the library (``proxyds.pipeline.build``, ``proxyds.spaces``, …)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import traceback
import types
import typing
from collections.abc import Sequence

from proxyds import __version__
from proxyds.cli_build import MissingSetting, run_build
from proxyds.config import BuildConfig
from proxyds.progress import LOGGER

__all__ = ["main"]


def _weights(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--weights takes four numbers c1,c2,c3,c4 (got {text!r})") from None


_DEBUG_HELP = "also print the traceback of an input, settings or file error"
_VERBOSE_HELP = "also log each stage's start and end and other details (INFO)"
_QUIET_HELP = "log errors only (no progress lines)"


def _common() -> argparse.ArgumentParser:
    """Options every command also takes after its name (``proxyds build ... --debug``)."""
    c = argparse.ArgumentParser(add_help=False)
    c.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=_DEBUG_HELP)
    c.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=_VERBOSE_HELP)
    c.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help=_QUIET_HELP)
    return c


_PARSE = {"weights": {"type": _weights}, "append": {"action": "append"}}


def add_config_options(parser: argparse.ArgumentParser, config_class, *, from_file: bool = False,
                       suppress_defaults: bool = False) -> None:
    """One option per field of ``config_class`` that carries help in its metadata (see
    ``proxyds.config._opt``): flag, type, default and help all come from the field, so a new
    setting is added in one place.

    ``from_file``: a config file may give the required settings, so argparse requires none
    (the command checks what is still missing). ``suppress_defaults``: options not given are
    left out of the namespace, which then says what the command line set."""
    hints = typing.get_type_hints(config_class)
    for f in dataclasses.fields(config_class):
        meta = dict(f.metadata)
        if "help" not in meta:
            continue
        kind = _plain_type(hints[f.name])
        kwargs = {"help": meta.pop("help")}
        for key in ("choices", "metavar", "required"):
            if key in meta and not (key == "required" and from_file):
                kwargs[key] = meta[key]
        if from_file and (meta.get("required") or meta.get("positional")):
            kwargs["help"] += " (required: here or in the --config file)"
        if meta.get("positional"):
            parser.add_argument(f.name, **kwargs, **({"nargs": "?"} if from_file else {}),
                                **({"default": argparse.SUPPRESS} if suppress_defaults else {}))
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
        if suppress_defaults:
            kwargs["default"] = argparse.SUPPRESS
        parser.add_argument(meta.get("flag", "--" + f.name.replace("_", "-")), dest=f.name, **kwargs)


def _plain_type(hint):
    """``int`` for ``int | None`` and so on: the type argparse converts to."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1 else hint


def _log_file() -> argparse.ArgumentParser:
    c = argparse.ArgumentParser(add_help=False)
    c.add_argument("--log-file", metavar="PATH", default=None,
                   help="also append the log lines (progress, warnings; with timestamps) to this file")
    return c


def _parser(suppress_defaults: bool = False) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="proxyds", description="Build data proxies for fast neural-architecture search.",
        epilog="exit status: 0 ok; 1 an error in the input, settings or files (one line naming it); 2 a usage "
               "error; 3 an internal error (a bug: the traceback is printed, please report it)")
    p.add_argument("--version", action="version", version=f"proxyds {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help=_VERBOSE_HELP)
    p.add_argument("-q", "--quiet", action="store_true", help=_QUIET_HELP)
    p.add_argument("--debug", action="store_true", help=_DEBUG_HELP)
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build", parents=[_common(), _log_file()], help="build a proxy dataset (paper Algorithm 1)",
                       description="Score every train example with two probe networks, map it to its nearest "
                                   "reference example, and draw a weighted subset of --ratio of the train split.")
    add_config_options(b, BuildConfig, from_file=True, suppress_defaults=suppress_defaults)
    b.add_argument("--config", metavar="FILE", default=None,
                   help="read the settings from a YAML or JSON file of BuildConfig fields, or from an output's "
                        "proxy.json (rebuilds that proxy: give a new --out); options given here override the file's")
    b.add_argument("--dry-run", action="store_true",
                   help="resolve everything and print the plan (splits and counts, classes, probes and their MACs, "
                        "label reduction, estimated compute, output shards); trains nothing, writes nothing to --out")

    _evaluate_parser(sub)
    sub.add_parser("spaces", parents=[_common()], help="list search spaces with their configs, MACs and params")
    sub.add_parser("datasets", parents=[_common()], help="list dataset presets")
    v = sub.add_parser("verify", parents=[_common()],
                       help="check that a proxy directory is whole, consistent and readable",
                       description="Check every file's size and sha256 against proxy.json, the manifest against "
                                   "the shards' contents, and that datasets and webdataset read the splits. "
                                   "Exits 0 when all checks pass, 1 on any problem.")
    v.add_argument("out", help="the proxy directory (a build's --out)")
    i = sub.add_parser("info", parents=[_common()], help="summarize a proxy directory (counts, selector, probes, "
                       "recipe, files)", description="Print what a build wrote: counts per split, selector, ratio, "
                       "seed, classes kept and dropped, probe accuracies, the recommended training recipe and "
                       "the files, read from OUT/proxy.json and the manifest.")
    i.add_argument("out", help="the proxy directory (a build's --out)")
    i.add_argument("--json", action="store_true", help="print one JSON object instead, for scripts")
    return p


def _evaluate_parser(sub) -> None:
    from proxyds.harness.command import add_evaluate_parser

    add_evaluate_parser(sub, _common(), _log_file())


def _evaluate(args) -> int:
    from proxyds.harness.command import run_evaluate

    return run_evaluate(args)


def _spaces(_args) -> int:
    from proxyds.spaces import get_space, list_spaces

    for name in list_spaces():
        space = get_space(name)
        print(f"{name}: input {tuple(space.input_shape)} - {space.description}")
        for c in space.configs:
            print(f"  {c.name:16s} MACs {space.macs(c):>14,}  params {space.params(c):>12,}")
    print("timm:NAME,NAME[@SIZE]: timm models by name, e.g. timm:resnet18,resnet50 or timm:resnet18,resnet50@32 "
          "(pip install 'proxyds[timm]'; pretrained=False, pooled pre-logit features)")
    return 0


def _datasets(_args) -> int:
    from proxyds.presets import get_preset, list_presets

    for name in list_presets():
        p = get_preset(name)
        print(f"{name}: {p.description} (default space {p.space})")
    return 0


def _info(args) -> int:
    from proxyds.info import format_info, read_info

    info = read_info(args.out)
    print(json.dumps(info, indent=1) if args.json else format_info(info))
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


_LOG_FORMAT = "%(asctime)s %(name)s: %(message)s"


def _setup_logging(args) -> logging.Handler | None:
    """stderr at the level -v/-q ask for; progress lines (``proxyds.progress``, logged where
    stderr is no terminal) shown unless -q; with ``--log-file`` the same lines appended there."""
    level = logging.INFO if args.verbose else logging.ERROR if args.quiet else logging.WARNING
    logging.basicConfig(level=level, format=_LOG_FORMAT)
    logging.getLogger(LOGGER).setLevel(logging.NOTSET if args.quiet else logging.INFO)
    logging.getLogger(LOGGER + ".other_ranks").setLevel(logging.WARNING)  # rank 0's lines are enough
    path = getattr(args, "log_file", None)
    if path is None:
        return None
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    handler.setFormatter(logging.Formatter(_LOG_FORMAT))
    logging.getLogger().addHandler(handler)
    _to_file(handler, logging.INFO, f"proxyds {__version__} {args.command}: started (pid {os.getpid()})")
    return handler


def _to_file(handler: logging.Handler | None, level: int, message: str) -> None:
    """A line for the log file only (stderr gets it its own way, or not at all)."""
    if handler is not None:
        handler.handle(logging.LogRecord("proxyds.cli", level, __file__, 0, message, None, None))


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; see ``EXIT_*`` for what the exit codes mean."""
    args = _parser().parse_args(argv)
    commands = {"evaluate": _evaluate, "spaces": _spaces, "datasets": _datasets, "verify": _verify, "info": _info,
                "build": lambda a: run_build(a, set(vars(_parser(suppress_defaults=True).parse_args(argv))))}
    handler = None
    try:
        handler = _setup_logging(args)
        code = commands[args.command](args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        _to_file(handler, logging.INFO, f"proxyds {args.command}: finished, exit status {code}")
        return code
    except BrokenPipeError:  # `proxyds spaces | head`: the reader left; not an error
        _silence_stdout()
        return 0
    except MissingSetting as err:
        print(f"usage: proxyds build [-h] [--config FILE] DATASET --out OUT --ratio RATIO ...\n"
              f"proxyds build: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except _USER_ERRORS as err:
        if args.debug:
            traceback.print_exc()
        message = " ".join(str(err).split()) or type(err).__name__  # one line, whatever the message holds
        print(f"proxyds {args.command}: error: {message}", file=sys.stderr)
        _to_file(handler, logging.ERROR, f"proxyds {args.command}: error: {message}")
        return EXIT_ERROR
    except Exception:  # noqa: BLE001 - a bug: show everything and ask for a report
        traceback.print_exc()
        print(f"proxyds {args.command}: internal error: {_REPORT}", file=sys.stderr)
        _to_file(handler, logging.ERROR, f"proxyds {args.command}: internal error:\n{traceback.format_exc()}")
        return EXIT_BUG
    finally:
        if handler is not None:
            logging.getLogger().removeHandler(handler)
            handler.close()


if __name__ == "__main__":
    sys.exit(main())
