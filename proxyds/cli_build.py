"""``proxyds build``'s command-line side: settings from the options and a ``--config`` file,
the build or its ``--dry-run`` plan, and what is printed. The work is in ``proxyds.pipeline``."""

from __future__ import annotations

import dataclasses

from proxyds.config import DEFAULT_SELECTOR, DEFAULT_SELECTOR_EVIDENCE, BuildConfig, read_config_file

__all__ = ["MissingSetting", "build_config", "run_build", "format_summary", "format_plan"]

_REQUIRED = {"dataset": "DATASET", "out": "--out", "ratio": "--ratio"}


class MissingSetting(Exception):
    """A required build setting given neither on the command line nor in ``--config``: a usage error."""


def build_config(args, given: set[str]) -> BuildConfig:
    """The BuildConfig of a ``build`` command line: the ``--config`` file's settings (if any),
    overridden by the options ``given`` on the command line; without a file, every option."""
    names = [f.name for f in dataclasses.fields(BuildConfig) if hasattr(args, f.name)]
    if args.config is None:
        values = {n: getattr(args, n) for n in names}
    else:
        values = {**read_config_file(args.config), **{n: getattr(args, n) for n in names if n in given}}
    missing = [flag for name, flag in _REQUIRED.items() if values.get(name) is None]
    if missing:
        where = " (or a setting of the --config file)" if args.config else " (or --config FILE)"
        raise MissingSetting(f"the following arguments are required: {', '.join(missing)}{where}")
    return BuildConfig.from_dict(values)


def run_build(args, given: set[str]) -> int:
    config = build_config(args, given)
    if args.dry_run:
        from proxyds.pipeline.dryrun import plan_build

        print(format_plan(plan_build(config)))
        return 0
    from proxyds.pipeline.build import build

    result = build(config)
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
        lines.append(f"  selector: {s['selector']}" + (f" (the default, because {DEFAULT_SELECTOR_EVIDENCE})"
                                                       if s["selector"] == DEFAULT_SELECTOR else ""))
    if "precision" in s:
        lines.append(f"  probes trained and scored in {s['precision']}")
    if "proxy_training" in s:
        lines.append(f"  recommended proxy training: {s['proxy_training']['text']}")
        lines.append(f"    e.g. {s['proxy_training']['example'].split(': ', 1)[-1]}")
    lines.append("  seconds per stage: " + ", ".join(f"{k} {v:.1f}" for k, v in stage_seconds.items()))
    return "\n".join(lines)




def _macs(n: float) -> str:
    for unit, size in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}MACs"
    return f"{n:.0f} MACs"


def format_plan(p: dict) -> str:
    """``--dry-run``'s plan (``proxyds.pipeline.dryrun.plan_build``) as text."""
    lines = [f"dry run: nothing trained, nothing written ({p['output']['out']} not created)",
             f"  dataset {p['dataset']}" + (f" ({p['source']})" if p["source"] != p["dataset"] else "")
             + f", space {p['space']}, device {p['device']} ({p['precision']}), "
             f"selector {p['selector']}, ratio {p['ratio']:g}, seed {p['seed']}"]
    for role, s in p["splits"].items():
        skipped = sum(s["skipped"].values())
        lines.append(f"  {role:9s} split {s['split']!s:10s} {s['examples']:>12,} examples in {s['shards']:,} shard{'s' if s['shards'] != 1 else ''}"
                     + (f", {s['usable']:,} usable ({skipped:,} skipped)" if skipped else ""))
    names, counts = p["classes"]["names"], p["classes"]["train"]
    shown = ", ".join(f"{n}:{c}" for n, c in zip(names, counts)) if len(names) <= 20 else f"{min(counts):,} to " \
        f"{max(counts):,} train examples each"
    lines.append(f"  classes   {len(names)} ({shown})")
    lines.append(f"  proxy     {p['selected']:,} train examples selected")
    for probe in p["probes"]:
        how = f"loaded from {probe['checkpoint']}" if probe["checkpoint"] else "trained (or reused from the work dir)"
        lines.append(f"  probe {probe['role']:6s} {probe['config']:>14s}  MACs {probe['macs']:>14,}  "
                     f"params {probe['params']:>12,}  {how}")
    lines.append(f"  label reduction ({p['label_reduction']['mode']}): {p['label_reduction']['decision']}")
    c = p["compute"]
    lines.append(f"  compute   probe training {_macs(c['training_macs'])} (forward {_macs(c['training_forward_macs'])}"
                 f" = MACs x usable train examples x epochs, x3 for the backward pass; {c['training_steps']:,} steps), "
                 f"scoring {_macs(c['scoring_macs'])} (every probe over both splits); total {_macs(c['total_macs'])}")
    o = p["output"]
    for split, s in o["splits"].items():
        bound = "" if s["exact"] else "at most "
        lines.append(f"  output    {split}: {bound}{s['rows']:,} rows in {bound}{s['files']:,} {o['format']} shard"
                     f"{'s' if s['files'] != 1 else ''} (--rows-per-shard {o['rows_per_shard']:,})")
    return "\n".join(lines)
