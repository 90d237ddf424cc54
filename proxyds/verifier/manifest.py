"""``proxyds verify``, part 2: the manifest. One row per original train example, in order,
with the schema the build writes; selected rows, keep_prob and counts agree with proxy.json.
Rows ``--on-error skip`` set aside (status ``skipped: <reason>``) carry what build writes for
them (case 0, neighbour -1, importance and keep_prob 0, proxy_label -1, maybe no label or
distance) and are never selected; counts in proxy.json cover the usable rows only."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow.parquet as pq

from proxyds.manifest import MANIFEST_SCHEMA
from proxyds.pipeline.scan import OK

if TYPE_CHECKING:
    from proxyds.verifier.report import VerifyReport

__all__ = ["check_manifest", "kept_classes"]

_OPTIONAL_COLUMNS = {"proxy_label"}  # absent from manifests written before label reduction
_SKIPPED = "skipped: "  # proxyds.pipeline.scan.SplitIndex.skip's prefix


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
    report.checked["manifest_rows"] = table.num_rows
    _check_rows(m, record, report)
    return m


def _check_rows(m: dict, record: dict, report: VerifyReport) -> None:
    summary, n = record["summary"], len(m["index"])

    def expect(what: str, got: int, want: int, where: str) -> None:
        if got != want:
            report.add(f"manifest.parquet: {what} is {got}, proxy.json {where} says {want}")

    expect("the row count", n, summary["num_train"], "summary.num_train")
    if not np.array_equal(m["index"], np.arange(n)):
        first = int(np.argmax(m["index"] != np.arange(n))) if len(m["index"]) == n else 0
        report.add(f"manifest.parquet: index is not 0..{n - 1} (row {first} has index {m['index'][first]})")
    keys = m["key"].tolist()
    ok = _check_status(m, keys, summary, report)
    _check_keys([k for k, good in zip(keys, ok) if good], report)
    for col in ("importance", "keep_prob", "distance"):
        v = m[col].astype(np.float64)
        v = v if col != "distance" else v[ok]  # a skipped row may have no distance (NaN)
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
    # neighbour = position in the ORIGINAL reference split, whose skipped rows count too
    num_classes = len(summary["class_names"])
    num_ref = summary["num_reference"] + sum(summary.get("skipped", {}).get("reference", {}).values())
    in_range = _check_ranges(m, ok, keys, num_classes, num_ref, report)
    _check_skipped(m, ok, keys, report)
    if in_range:
        _check_summary_counts(m, ok, selected, summary, num_classes, report)
        if "proxy_label" in m:
            _check_proxy_labels(m, ok, selected, keys, summary, report)
    report.checked["selected"] = k


def _check_status(m: dict, keys: list, summary: dict, report) -> np.ndarray:
    """``ok`` or ``skipped: <reason>`` per row; returns which rows are usable. The skip counts
    (and the usable count) proxy.json reports are the manifest's."""
    status = m["status"].tolist()
    ok = np.fromiter((s == OK for s in status), dtype=bool, count=len(status))
    odd = [i for i, s in enumerate(status) if s != OK and not (s.startswith(_SKIPPED) and len(s) > len(_SKIPPED))]
    if odd:
        report.add(f"manifest.parquet: {len(odd)} status values are neither {OK!r} nor 'skipped: <reason>', e.g. "
                   f"key {keys[odd[0]]!r} has {status[odd[0]]!r}")
    usable = summary.get("num_train_usable")
    if usable is not None and usable != int(ok.sum()):
        report.add(f"manifest.parquet: {int(ok.sum())} rows have status 'ok', proxy.json summary.num_train_usable "
                   f"says {usable}")
    recorded = (summary.get("skipped") or {}).get("train")
    if recorded is not None:
        counts: dict[str, int] = {}
        for s in status:
            if s != OK:
                counts[s] = counts.get(s, 0) + 1
        if dict(recorded) != counts:
            report.add(f"manifest.parquet: skipped rows by reason are {dict(sorted(counts.items()))}, proxy.json "
                       f"summary.skipped.train says {dict(recorded)}")
    return ok


def _check_keys(keys: list, report) -> None:
    """The usable rows' keys are unique and well formed (a skipped row may be a duplicate, or
    have the very key that got it skipped)."""
    if len(set(keys)) != len(keys):
        seen: set[str] = set()
        dup = next(k for k in keys if k in seen or seen.add(k))
        report.add(f"manifest.parquet: key {dup!r} occurs more than once")
    bad_keys = [k for k in keys if not k or "." in k]  # what build.scan rejects
    if bad_keys:
        report.add(f"manifest.parquet: {len(bad_keys)} keys are empty or contain '.', e.g. {bad_keys[0]!r}")


def _check_ranges(m: dict, ok: np.ndarray, keys: list, num_classes: int, num_ref: int, report) -> bool:
    """Usable rows: label, case (1..4) and neighbour in range. Skipped rows: as build writes
    them, label -1 (unreadable) or a class, case 0, neighbour -1. True when all hold."""
    label, case, neighbor = m["label"], m["case"], m["neighbor"]
    is_class = (label >= 0) & (label < num_classes)
    checks = [
        ("label", np.where(ok, ~is_class, ~is_class & (label != -1)), f"outside 0..{num_classes - 1}", "-1 or a class"),
        ("case", np.where(ok, (case < 1) | (case > 4), case != 0), "outside 1..4", "0"),
        ("neighbor", np.where(ok, (neighbor < 0) | (neighbor >= num_ref), neighbor != -1),
         f"outside 0..{num_ref - 1}", "-1"),
    ]
    for col, wrong, usable_rule, skipped_rule in checks:
        if wrong.any():
            i = int(np.argmax(wrong))
            where = usable_rule if ok[i] else f"not {skipped_rule} on skipped rows"
            report.add(f"manifest.parquet: {int(wrong.sum())} {col} values are {where}, e.g. key "
                       f"{keys[i]!r} has {col} {m[col][i]}")
    return not any(wrong.any() for _, wrong, _, _ in checks)


def _check_skipped(m: dict, ok: np.ndarray, keys: list, report) -> None:
    """A skipped row is never drawn: not selected, importance and keep_prob 0."""
    for what, wrong in (("are marked selected", m["selected"].astype(bool)),
                        ("have importance or keep_prob other than 0", (m["importance"] != 0) | (m["keep_prob"] != 0))):
        bad = ~ok & wrong
        if bad.any():
            i = int(np.argmax(bad))
            report.add(f"manifest.parquet: {int(bad.sum())} skipped rows {what}, e.g. key {keys[i]!r} "
                       f"({m['status'][i]})")


def _check_summary_counts(m: dict, ok: np.ndarray, selected: np.ndarray, summary: dict, num_classes: int,
                          report) -> None:
    """The per-case and per-class counts proxy.json reports are the manifest's (usable rows)."""
    derived = {
        ("cases", "train"): np.bincount(m["case"][ok].astype(np.int64) - 1, minlength=4),
        ("cases", "selected"): np.bincount(m["case"][selected & ok].astype(np.int64) - 1, minlength=4),
        ("classes", "train"): np.bincount(m["label"][ok], minlength=num_classes),
        ("classes", "selected"): np.bincount(m["label"][selected & ok], minlength=num_classes),
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


def _check_proxy_labels(m: dict, ok: np.ndarray, selected: np.ndarray, keys: list, summary: dict, report) -> None:
    """``proxy_label`` is the label renumbered over the kept classes (-1: dropped or skipped);
    only kept rows are selected."""
    kept = kept_classes(summary)
    label_map = np.arange(len(summary["class_names"]))
    if kept is not None:
        label_map = np.full(len(summary["class_names"]), -1)
        label_map[kept] = np.arange(len(kept))
    expected = np.where(ok, label_map[np.maximum(m["label"], 0)], -1)
    wrong = m["proxy_label"] != expected
    if wrong.any():
        i = int(np.argmax(wrong))
        report.add(f"manifest.parquet: {int(wrong.sum())} proxy_label values disagree with the label, status and "
                   f"summary.label_reduction, e.g. key {keys[i]!r}: label {m['label'][i]}, proxy_label "
                   f"{m['proxy_label'][i]}, expected {expected[i]}")
    dropped = selected & (m["proxy_label"] < 0)
    if dropped.any():
        report.add(f"manifest.parquet: {int(dropped.sum())} selected rows belong to dropped classes "
                   f"(proxy_label -1), e.g. key {keys[int(np.argmax(dropped))]!r}")
