"""A proxy's dataset card: the metadata ``load_dataset`` and the Hub read, and a text that
describes the build that ran (selector, ratio and seed, label reduction, probes, the
recommended training recipe) with one figure, the examples kept per class.

Nothing in the card names a local path: the dataset is named by its preset, or by the last
plain component of its source (``hf:/data/imagenet`` -> ``imagenet``).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from proxyds.config import DEFAULT_SELECTOR, DEFAULT_SELECTOR_EVIDENCE, validate_license
from proxyds.selection.selectors import get_selector
from proxyds.sinks.card import write_card
from proxyds.sinks.card_figure import write_class_figure

__all__ = ["FIGURE", "write_figure", "write_proxy_card", "dataset_name", "source_name", "card_text"]

log = logging.getLogger(__name__)

#: The card's figure, relative to OUT.
FIGURE = "classes.png"
_INTS = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
_MAX_LISTED = 30


def dataset_name(dataset: str) -> str:
    """A name for ``dataset`` (a preset or a source spec) that holds no path: the preset's name,
    else the last component of the source without brace or glob patterns."""
    if ":" not in dataset:
        return dataset
    scheme, _, rest = dataset.partition(":")
    parts = [p for p in re.split(r"[\\/]+", rest)
             if p and p not in (".", "..", "~") and not p.endswith(":") and not re.search(r"[{}*?\[\]]", p)]
    return parts[-1] if parts else scheme


def source_name(spec: str) -> str:
    """``spec``'s scheme and :func:`dataset_name`, without its path (``hf:/home/me/data/x`` -> ``hf:x``):
    what proxy.json's summary records as the source, so a published output does not name a local path."""
    scheme, sep, _ = spec.partition(":")
    return f"{scheme}:{dataset_name(spec)}" if sep else spec


def write_figure(out: Path, config, summary: dict) -> str:
    """Draw the per-class kept-vs-total figure into ``out``; returns its path relative to ``out``."""
    names = summary["class_names"]
    dropped = set((summary.get("label_reduction") or {}).get("dropped_classes", []))
    k, n = summary["num_selected"], summary["num_train_usable"]
    title = f"{dataset_name(config.dataset)} proxy: train examples kept per class ({k:,} of {n:,}, {k / n:.1%})"
    write_class_figure(out / FIGURE, names, summary["classes"]["selected"], summary["classes"]["train"],
                       dropped=[name in dropped for name in names], title=title)
    return FIGURE


def write_proxy_card(out: Path, plan, summary: dict, splits: dict, files: dict, *, class_names, label_field: str,
                     figure: str | None) -> Path:
    """Write ``out/README.md`` for a proxy whose data files are written: ``splits`` as proxy.json
    records them (train first, then the reference split), ``files`` their sizes and sha256."""
    from datasets import Image

    fmt = plan.format
    ext = "parquet" if fmt == "parquet" else "tar"
    features = output_features(out, splits, fmt, label_field, class_names)
    sizes = {s: (v["rows"], sum(files[f"data/{f}"]["bytes"] for f in v["files"])) for s, v in splits.items()}
    images = features is not None and any(isinstance(f, Image) for f in features.values())
    license = card_license(plan)
    return write_card(
        out, data_files={s: [f"data/{s}-*.{ext}"] for s in splits},
        summary_md=card_text(plan.config, summary, splits, fmt, label_field=label_field, figure=figure,
                             license=license),
        pretty_name=f"{dataset_name(plan.config.dataset)} data proxy ({_percent(plan.config.ratio)} of train, "
                    f"{plan.config.selector} selector)",
        checksums={p: (f["bytes"], f["sha256"]) for p, f in files.items() if p.startswith("data/")},
        features=features, split_sizes=sizes, license=license,
        task_categories=["image-classification" if images else "other"])


def output_features(out: Path, splits: dict, fmt: str, label_field: str, class_names):
    """The features ``datasets.load_dataset(out)`` gives the written splits: a parquet shard's
    (its schema carries them), or for WebDataset what ``datasets`` infers from the first non-empty
    tar, with the integer label field made a ``ClassLabel`` of ``class_names``."""
    import datasets

    if fmt == "parquet":
        import pyarrow.parquet as pq

        return datasets.Features.from_arrow_schema(pq.read_schema(out / "data" / splits["train"]["files"][0]))
    shard = next((out / "data" / f for s in splits.values() for f, c in zip(s["files"], s["counts"]) if c), None)
    if shard is None:
        return None
    try:
        features = datasets.load_dataset("webdataset", data_files={"train": [str(shard)]}, split="train",
                                         streaming=True).features
    except (ValueError, TypeError, OSError, ImportError) as err:
        log.warning("the dataset card lists no features: datasets cannot read the WebDataset shard %s (%s)",
                    shard.name, err)
        return None
    label = features.get(label_field) if features is not None else None
    if isinstance(label, datasets.Value) and label.dtype in _INTS:
        features = datasets.Features({**features, label_field: datasets.ClassLabel(names=list(class_names))})
    return features


def card_license(plan) -> str | list[str]:
    """``--license``, else the license the input directory's own card declares, else ``unknown``."""
    if plan.config.license is not None:
        return plan.config.license
    location = os.path.expanduser(str(getattr(plan.train, "location", "") or ""))
    card = Path(location) / "README.md" if location and os.path.isdir(location) else None
    if card is None or not card.is_file():
        return "unknown"
    import yaml
    from huggingface_hub import DatasetCard

    try:
        declared = DatasetCard.load(card).data.license
        if declared is None:
            return "unknown"
        return validate_license(declared) if isinstance(declared, str) else [validate_license(x) for x in declared]
    except (TypeError, ValueError, UnicodeDecodeError, yaml.YAMLError):
        log.warning("the input's dataset card %s declares no Hub license identifier the proxy can inherit; its card "
                    "says unknown (pass --license to set it)", card.name)
        return "unknown"


def card_text(config, summary: dict, splits: dict, fmt: str, *, label_field: str, figure: str | None,
              license: str | list[str] = "unknown") -> str:
    """The human part of the card: what this is, how this build drew it, how to train on it and load it."""
    ref = next(s for s in splits if s != "train")
    licenses = ", ".join(f"`{x}`" for x in ([license] if isinstance(license, str) else license))
    note = " (neither `--license` nor the input's dataset card gave one)" if license == "unknown" else ""
    parts = [_intro(config, summary, splits, ref), f"License: {licenses}{note}.", _how_drawn(config, summary, ref)]
    if figure:
        parts.append(f"![Train examples kept per class, against the train split's total]({figure})")
    parts += [_probes(summary, ref), _recipe(summary), _load(splits, fmt, ref, label_field)]
    return "\n\n".join(p for p in parts if p)


def _percent(ratio: float) -> str:
    return f"{ratio * 100:.3g}%"


def _intro(config, summary: dict, splits: dict, ref: str) -> str:
    name, k, n = dataset_name(config.dataset), summary["num_selected"], summary["num_train"]
    kept = " (only the classes label reduction kept)" if (summary.get("label_reduction") or {}).get("applied") else ""
    rows = "\n".join(f"| {s} | {v['rows']:,} | {len(v['files'])} |" for s, v in splits.items())
    return (f"# {name} data proxy\n\n"
            f"A {k:,}-example subset ({k / n:.1%}) of the {n:,}-example train split of `{name}`, drawn by proxyds "
            "to rank neural architectures quickly: train candidate architectures on `train` instead of the full "
            f"train split, and evaluate them on `{ref}`, the reference split{kept}.\n\n"
            f"| split | rows | files |\n|---|---:|---:|\n{rows}")


def _how_drawn(config, summary: dict, ref: str) -> str:
    usable, k = summary["num_train_usable"], summary["num_selected"]
    doc = " ".join((get_selector(config.selector).__doc__ or "a custom selector (no docstring)").split())
    doc = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", doc)
    lines = ["## How it was drawn", "", f"- **Selector `{config.selector}`** (`--selector`): {doc}"]
    if config.selector == "probe":
        lines[-1] += f" Case weights c1..c4 of this build: {', '.join(f'{w:g}' for w in config.weights)}."
    if config.selector == DEFAULT_SELECTOR:
        lines.append(f"- **Why `{DEFAULT_SELECTOR}`**: it is proxyds' default because {DEFAULT_SELECTOR_EVIDENCE}.")
    if summary.get("selector_weights_flat") and config.selector != "random":
        lines.append("- **Its weights came out all equal** (the probes measured nothing: see their accuracies "
                     "below), so this proxy is a plain random subset.")
    red = summary.get("label_reduction") or {}
    dropped = set(red.get("dropped_classes", [])) if red.get("applied") else set()
    pool = sum(c for name, c in zip(summary["class_names"], summary["classes"]["train"]) if name not in dropped)
    source = f"the {pool:,} examples of the kept classes" if dropped else "them"
    lines.append(f"- **Draw**: exactly {k:,} = round({config.ratio:g} x {usable:,} usable train examples) drawn from "
                 f"{source}, without replacement, each with probability proportional to its selector weight "
                 f"(Efraimidis-Spirakis keys hashed from seed {config.seed} and the example's key: the same "
                 "`--ratio` and `--seed` give the same proxy on any machine, worker count or world size).")
    skipped = sum((summary.get("skipped") or {}).get("train", {}).values())
    if skipped:
        lines.append(f"- {skipped:,} train examples could not be read and were left out (`--on-error skip`; the "
                     "manifest's `status` column says why).")
    lines.append(_label_reduction(red, summary["class_names"], ref))
    return "\n".join(lines)


def _label_reduction(red: dict, names: list, ref: str) -> str:
    if not red:
        return f"- **Label reduction**: none; all {len(names)} classes kept."
    if not red.get("applied"):
        why = "" if red["mode"] == "off" else f" ({red['reason']})"
        return f"- **Label reduction** (`--label-reduction {red['mode']}`): none, all {len(names)} classes kept{why}."
    kept, dropped = red["kept_classes"], red["dropped_classes"]
    listed = ", ".join(f"`{n}`" for n in dropped[:_MAX_LISTED])
    more = f" and {len(dropped) - _MAX_LISTED} more (proxy.json `summary.label_reduction.dropped_classes`)" \
        if len(dropped) > _MAX_LISTED else ""
    return (f"- **Label reduction** (`--label-reduction {red['mode']}`): kept {len(kept)} of {len(names)} classes, "
            f"ranked by {red['ranked_by']}; dropped {len(dropped)}: {listed}{more}. Why: {red['reason']}. The kept "
            f"classes are renumbered 0..{len(kept) - 1} in their original order, and `{ref}` holds only their "
            "examples.")


def _probes(summary: dict, ref: str) -> str:
    p, cases = summary["probes"], summary["cases"]
    rows = "\n".join(f"| {role} | {v['config']} | {v['macs']:,} | {v['reference_accuracy']:.4f} | "
                     f"{v['train_accuracy']:.4f} |" for role, v in p.items())
    lines = [f"## Probes\n\nThe probes are configurations of the search space `{summary['space']}` spread by MACs, "
             "trained on the train split (or loaded with `--probe`; proxy.json's `config` says which); their accuracy "
             f"on `{ref}` and on the train split:\n\n"
             f"| probe | config | MACs | {ref} accuracy | train accuracy |\n|---|---|---:|---:|---:|\n{rows}"]
    lines += [f"**Weak probe**: {w}" for w in summary.get("weak_probes", [])]
    lines.append(f"`{ref}` examples by the paper's case (1 both probes correct, 2 both wrong, 3 only the better probe "
                 "correct, 4 only the worse one; the manifest's `case` column): "
                 + ", ".join(f"{n} {c:,}" for n, c in zip(cases["names"], cases["reference"])) + ".")
    return "\n\n".join(lines)


def _recipe(summary: dict) -> str:
    training = summary.get("proxy_training")
    if not training:
        return ""
    example = training["example"].split(": ", 1)[-1]
    return (f"## Training on this proxy\n\nA proxy trained with the full data's epochs and batch size gets "
            f"far fewer optimiser steps. Recommended (measured best by `proxyds evaluate`): {training['text']}. "
            f"For example, {example}.")


def _load(splits: dict, fmt: str, ref: str, label_field: str) -> str:
    code = ["from datasets import load_dataset",
            f'ds = load_dataset("PATH/TO/THIS/DIR")  # train = the proxy, {ref} = the reference split',
            f'ds["train"].features["{label_field}"].names  # the class names']
    if fmt == "wds":
        code += ["", "import webdataset as wds",
                 f'ds = wds.WebDataset("{_brace_pattern(splits["train"]["files"])}", shardshuffle=False)',
                 "", "import wids",
                 f'ds = wids.ShardListDataset("{splits["train"]["wids_index"]}")  # random access']
    code = "\n".join(code)
    return (f"## Load\n\n```python\n{code}\n```\n\n`manifest.parquet` has one row per ORIGINAL train example (key, "
            "shard, label, case, importance = the selector's weight, keep_prob, selected, proxy_label, status); "
            "`proxy.json` records the full configuration, the counts and the sha256 of every file.")


def _brace_pattern(files: list[str]) -> str:
    """``data/train-{000000..000007}.tar`` for consecutively numbered shards, else the first file."""
    nums = [re.fullmatch(r"(.*-)(\d+)(\.tar)", f) for f in files]
    if len(files) > 1 and all(nums) and len({(m[1], m[3], len(m[2])) for m in nums}) == 1 \
            and [int(m[2]) for m in nums] == list(range(int(nums[0][2]), int(nums[0][2]) + len(files))):
        return f"data/{nums[0][1]}{{{nums[0][2]}..{nums[-1][2]}}}{nums[0][3]}"
    return f"data/{files[0]}"
