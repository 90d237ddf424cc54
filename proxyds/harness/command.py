"""The ``proxyds evaluate`` command: its options and the thin handler over
:func:`proxyds.harness.evaluate.evaluate` (cli.py adds it to the command line). Nothing heavy is
imported until the command runs."""

from __future__ import annotations

import argparse

__all__ = ["add_evaluate_parser", "run_evaluate", "format_evaluation"]


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


def add_evaluate_parser(sub, *parents: argparse.ArgumentParser) -> None:
    """The ``evaluate`` subcommand and its options, on ``sub`` (the command line's subparsers);
    ``parents`` hold the options every command shares."""
    e = sub.add_parser(
        "evaluate", parents=list(parents), help="check whether proxies keep a search space's architecture ranking",
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
    e.add_argument("--workers", type=int, default=None,
                   help="runs trained at a time, each in its own process (default 1); with a dataset each run "
                        "also decodes in --build workers=K DataLoader workers, by default the build's cut to fit "
                        "N x (1 + K) <= cores. Under torchrun each rank trains its share of the runs (no DDP) "
                        "into the shared --cache; the results do not depend on how runs are spread")
    e.add_argument("--threads", type=int, default=None,
                   help="torch threads per training process (default 1: fastest for small models on shared CPUs)")
    e.add_argument("--cache", default=None,
                   help="run cache directory (default $PROXYDS_CACHE/evaluate): finished runs are read back, so "
                        "rerunning a killed evaluation resumes it")
    e.add_argument("--device", default=None,
                   help="cpu (default), auto, cuda or cuda:N (under torchrun, cuda = each rank's own GPU)")
    _evaluate_source_options(e)


def _evaluate_source_options(e) -> None:
    """The options of `proxyds evaluate DATASET` (a preset or hf:/wds: source)."""
    u = e.add_argument_group("the benchmark suite the build's defaults are chosen on")
    u.add_argument("--suite", default=None, metavar="NAME",
                   help="run a suite instead of one benchmark: 'selectors' (MNIST-1D draws x sampled spaces, a "
                        "tuning and a held-out half; docs/benchmarks-selectors.md) or 'tiny' (a smoke run)")
    u.add_argument("--members", type=_csv(str), default=None,
                   help="only these members of the suite (to spread it over processes; the report is written by "
                        "a run without --members)")
    u.add_argument("--phase", choices=("recipes", "selectors", "all"), default="all",
                   help="recipes: the candidate proxy recipes on the tuning half; selectors: every selector with "
                        "the chosen recipe; all (default): both, then the report")
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
    g.add_argument("--evaluation-split", default=None, metavar="NAME",
                   help="evaluation split B = this split of the source, whole (a second held-out split, e.g. "
                        "'test' beside 'validation'); reference split A = the held-out split, uncut (default: none, "
                        "B is cut out of the held-out split by --evaluation-fraction)")
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
                   "split_seed", "evaluation_split", "build")


def run_evaluate(args) -> int:
    """Run ``proxyds evaluate`` from its parsed arguments; print the summary; exit status 0."""
    from proxyds.harness.evaluate import BENCHMARKS, EvaluateConfig, evaluate

    if args.suite is not None:
        return _run_suite(args)
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
                                         evaluation_split=args.evaluation_split, **fields)
    print(format_evaluation(evaluate(cfg), cfg.out))
    return 0


def _run_suite(args) -> int:
    from proxyds.harness.suite import run_suite

    given = [k for k in ("space", "configs", "selectors", "ratios", "full_seeds", "proxy_seeds", "epochs", "batch_size",
                         "lr", "train", "mnist1d", "data", "build") if getattr(args, k) is not None]
    if given or args.benchmark != "mnist1d-cnn" or args.tiny:
        bad = f"--{given[0].replace('_', '-')}" if given else ("--tiny" if args.tiny else args.benchmark)
        raise ValueError(f"--suite runs its own fixed settings; drop {bad} (or drop --suite)")
    result = run_suite(args.suite, args.out, cache=args.cache, members=args.members, phase=args.phase)
    if result is None:
        print(f"suite {args.suite}: phase {args.phase} done for {', '.join(args.members or ['every member'])}; "
              f"run it without --members to write the report")
        return 0
    d = result["default"]
    print(f"report written to {args.out} (suite.md, suite.json, frontier.png)\n"
          f"  recipe chosen: {result['recipe_choice']['chosen']}\n  default selector: {d['chosen']} ({d['why']})")
    return 0


def format_evaluation(r: dict, out) -> str:
    ce, b = r["noise_ceiling"], r["baselines"]
    lines = [f"report written to {out} (report.md, results.json, figures)",
             f"  Spearman vs full data (accuracy on split B): noise ceiling {ce['spearman']:.3f}, "
             f"rank by MACs {b['macs']['spearman']:.3f}, rank by params {b['params']['spearman']:.3f}"
             + "".join(f", {k} {v['spearman']:.3f}" for k, v in b.items() if k not in ("macs", "params"))]
    training, cost = r["settings"].get("proxy_training", {}), r["settings"].get("proxy_cost", {})
    if training:
        lines.append("  proxy training: " + "; ".join(
            f"{float(ratio) * 100:g}%: {t['epochs']} epochs, batch {t['batch_size']}, lr {t['lr']:.3g}"
            + (f" ({cost[ratio]['steps_fraction']:.2f} of the full run's steps, "
               f"{cost[ratio]['flops_fraction']:.2f} of its FLOPs)" if ratio in cost else "")
            for ratio, t in training.items()))
    for sel, by_ratio in r["proxies"].items():
        cells = [f"{float(ratio) * 100:g}%: {e['metrics']['spearman']['mean']:.3f} ± "
                 f"{e['metrics']['spearman']['std']:.3f}" for ratio, e in by_ratio.items()]
        lines.append(f"  {sel:16s} " + "   ".join(cells))
    return "\n".join(lines)
