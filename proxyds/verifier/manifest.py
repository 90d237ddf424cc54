"""``proxyds verify``, part 2: the manifest. One row per original train example, in order,
with the schema the build writes; selected rows, keep_prob and counts agree with proxy.json."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow.parquet as pq

from proxyds.manifest import MANIFEST_SCHEMA

if TYPE_CHECKING:
    from proxyds.verifier.report import VerifyReport

__all__ = ["check_manifest", "kept_classes"]

_OPTIONAL_COLUMNS = {"proxy_label"}  # absent from manifests written before label reduction


def check_manifest(out: Path, record: dict, report: VerifyReport) -> dict | None:
    """The manifest's columns as arrays if it reads with the right schema, else None."""
    path = out / "manifest.parquet"
    if "manifest.parquet" not in record["files"]:
        report.add("manifest.parquet: not listed in proxy.json")
    if path.is_symlink() or not path.is_file():
        return None  # reported as missing (or a symlink) by the file check
    table = pq.read_table(path)
    bad = False
    for want in MANIFEST_SCHEMA:
        if want.name in _OPTIONAL_COLUMNS and want.name not in table.column_names:
            continue
        if want.name not in table.column_names:
            report.add(f"manifest.parquet: column {want.name!r} is missing")
            bad = True
        elif table.schema.field(want.name).type != want.type:
            report.add(f"manifest.parquet: column {want.name!r} is {table.schema.field(want.name).type}, "
                       f"expected {want.type}")
            bad = True
        elif table[want.name].null_count:
            report.add(f"manifest.parquet: column {want.name!r} has {table[want.name].null_count} nulls")
            bad = True
    if bad:
        return None
    m = {name: table[name].to_numpy(zero_copy_only=False) for name in table.column_names
         if name in MANIFEST_SCHEMA.names}
    summary, n = record["summary"], table.num_rows
    report.checked["manifest_rows"] = n

    def expect(what: str, got: int, want: int, where: str) -> None:
        if got != want:
            report.add(f"manifest.parquet: {what} is {got}, proxy.json {where} says {want}")

    expect("the row count", n, summary["num_train"], "summary.num_train")
    if not np.array_equal(m["index"], np.arange(n)):
        first = int(np.argmax(m["index"] != np.arange(n))) if len(m["index"]) == n else 0
        report.add(f"manifest.parquet: index is not 0..{n - 1} (row {first} has index {m['index'][first]})")
    keys = m["key"].tolist()
    if len(set(keys)) != n:
        seen: set[str] = set()
        dup = next(k for k in keys if k in seen or seen.add(k))
        report.add(f"manifest.parquet: key {dup!r} occurs more than once")
    bad_keys = [k for k in keys if not k or "." in k]  # what build.scan rejects
    if bad_keys:
        report.add(f"manifest.parquet: {len(bad_keys)} keys are empty or contain '.', e.g. {bad_keys[0]!r}")
    for col in ("importance", "keep_prob", "distance"):
        v = m[col].astype(np.float64)
        if not (np.isfinite(v).all() and (v >= 0).all()):
            report.add(f"manifest.parquet: {col} has {int((~np.isfinite(v) | (v < 0)).sum())} values that are "
                       "negative, NaN or infinite")
    total = math.fsum(m["keep_prob"].tolist())
    if not abs(total - 1.0) <= 1e-9:
        report.add(f"manifest.parquet: keep_prob sums to {total!r}, not 1 (within 1e-9)")
    selected = m["selected"].astype(bool)
    k = int(selected.sum())
    expect("the number of selected rows", k, summary["num_selected"], "summary.num_selected")
    expect("the number of selected rows", k, record["splits"]["train"]["rows"], "splits.train.rows")
    num_classes, num_ref = len(summary["class_names"]), summary["num_reference"]
    ranges = [("label", 0, num_classes - 1), ("case", 1, 4), ("neighbor", 0, num_ref - 1)]
    in_range = True
    for col, lo, hi in ranges:
        outside = (m[col] < lo) | (m[col] > hi)
        if outside.any():
            i = int(np.argmax(outside))
            report.add(f"manifest.parquet: {int(outside.sum())} {col} values are outside {lo}..{hi}, e.g. key "
                       f"{keys[i]!r} has {col} {m[col][i]}")
            in_range = False
    if in_range:
        _check_summary_counts(m, selected, summary, num_classes, report)
        if "proxy_label" in m:
            _check_proxy_labels(m, selected, keys, summary, report)
    report.checked["selected"] = k
    return m


def _check_summary_counts(m: dict, selected: np.ndarray, summary: dict, num_classes: int, report) -> None:
    """The per-case and per-class counts proxy.json reports are the manifest's."""
    derived = {
        ("cases", "train"): np.bincount(m["case"].astype(np.int64) - 1, minlength=4),
        ("cases", "selected"): np.bincount(m["case"][selected].astype(np.int64) - 1, minlength=4),
        ("classes", "train"): np.bincount(m["label"], minlength=num_classes),
        ("classes", "selected"): np.bincount(m["label"][selected], minlength=num_classes),
    }
    for (group, row), counts in derived.items():
        recorded = (summary.get(group) or {}).get(row)
        if recorded is not None and list(recorded) != counts.tolist():
            report.add(f"manifest.parquet: per-{'class' if group == 'classes' else 'case'} {row} counts are "
                       f"{counts.tolist()}, proxy.json summary.{group}.{row} says {list(recorded)}")


def kept_classes(summary: dict) -> list[int] | None:
    """Indices of the classes label reduction kept, or None when it was not applied."""
    reduction = summary.get("label_reduction")
    if not (isinstance(reduction, dict) and reduction.get("applied")):
        return None
    names = summary["class_names"]
    return [names.index(n) for n in reduction["kept_classes"]]


def _check_proxy_labels(m: dict, selected: np.ndarray, keys: list, summary: dict, report) -> None:
    """``proxy_label`` is the label renumbered over the kept classes (-1: dropped); only kept rows are selected."""
    kept = kept_classes(summary)
    label_map = np.arange(len(summary["class_names"]))
    if kept is not None:
        label_map = np.full(len(summary["class_names"]), -1)
        label_map[kept] = np.arange(len(kept))
    wrong = m["proxy_label"] != label_map[m["label"]]
    if wrong.any():
        i = int(np.argmax(wrong))
        report.add(f"manifest.parquet: {int(wrong.sum())} proxy_label values disagree with the label and "
                   f"summary.label_reduction, e.g. key {keys[i]!r}: label {m['label'][i]}, proxy_label "
                   f"{m['proxy_label'][i]}, expected {label_map[m['label'][i]]}")
    dropped = selected & (m["proxy_label"] < 0)
    if dropped.any():
        report.add(f"manifest.parquet: {int(dropped.sum())} selected rows belong to dropped classes "
                   f"(proxy_label -1), e.g. key {keys[int(np.argmax(dropped))]!r}")
