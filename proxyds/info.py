"""``proxyds info OUT``: what a finished build holds, read from its proxy.json and manifest.

:func:`read_info` gives one JSON-ready dict (``proxyds info --json``); :func:`format_info`
the short human summary. Neither checks the files' digests: that is ``proxyds verify``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

__all__ = ["read_info", "format_info"]


def _record(out: Path) -> dict:
    record_path = out / "proxy.json"
    if not out.is_dir():
        raise FileNotFoundError(f"{out} is not a directory (expected a proxyds output: a build's --out)")
    if not record_path.is_file():
        raise ValueError(f"{out} is not a proxyds output: it has no proxy.json (a build writes it last, so an "
                         f"interrupted build has none either)")
    try:
        record = json.loads(record_path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{record_path} is not valid JSON ({err}); is {out} a proxyds output?") from None
    if not isinstance(record, dict) or not isinstance(record.get("summary"), dict) or "files" not in record:
        raise ValueError(f"{record_path} is not a proxyds record (no summary or files); is {out} a proxyds output?")
    return record


def _manifest_counts(out: Path) -> dict | None:
    """Rows, selected and skipped rows of the manifest (None when there is none)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    path = out / "manifest.parquet"
    if not path.is_file():
        return None
    try:
        table = pq.read_table(path, columns=["selected", "status"])
    except Exception as err:  # noqa: BLE001 - pyarrow raises many types for a damaged file
        raise ValueError(f"{path} is unreadable ({type(err).__name__}: {err}); run proxyds verify {out}") from None
    selected = int(pc.sum(table["selected"]).as_py() or 0)
    skipped = table.num_rows - int(pc.sum(pc.equal(table["status"], "ok")).as_py() or 0)
    return {"rows": table.num_rows, "selected": selected, "skipped": skipped}


def read_info(out: str | Path) -> dict:
    """A summary of the proxyds output ``out``: counts per split, selector, ratio, seed, classes
    kept and dropped, probe accuracies, the recommended training recipe, files and sizes.

    Raises ValueError (or FileNotFoundError) naming ``out`` when it is not a proxyds output."""
    out = Path(out)
    record = _record(out)
    s, config = record["summary"], record.get("config") or {}
    reduction = s.get("label_reduction") or {}
    names = s.get("class_names", [])
    files = {path: f.get("bytes") for path, f in record["files"].items()}
    files["proxy.json"] = (out / "proxy.json").stat().st_size  # the record lists every file but itself
    files = dict(sorted(files.items()))
    return {
        "out": str(out), "proxyds_version": record.get("proxyds_version"), "format": s.get("format"),
        "dataset": s.get("dataset"), "source": s.get("source"), "space": s.get("space"),
        "selector": s.get("selector", config.get("selector")), "ratio": config.get("ratio"),
        "seed": record.get("seed", config.get("seed")),
        "train": {"examples": s.get("num_train"), "usable": s.get("num_train_usable"),
                  "selected": s.get("num_selected")},
        "splits": {name: {"rows": v.get("rows"), "files": len(v.get("files", []))}
                   for name, v in record.get("splits", {}).items()},
        "manifest": _manifest_counts(out),
        "classes": {"total": len(names), "kept": reduction.get("kept_classes", names),
                    "dropped": reduction.get("dropped_classes", []),
                    "label_reduction": reduction.get("reason", "off"),
                    "without_examples": s.get("classes_without_examples", [])},
        "probes": {role: {k: p.get(k) for k in ("config", "macs", "reference_accuracy", "train_accuracy")}
                   for role, p in s.get("probes", {}).items()},
        "weak_probes": s.get("weak_probes", []),
        "recipe": (s.get("proxy_training") or {}).get("text"),
        "recipe_example": (s.get("proxy_training") or {}).get("example"),
        "files": files, "total_bytes": sum(b or 0 for b in files.values()),
    }


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def _names(names: list[str], limit: int = 12) -> str:
    return ", ".join(names[:limit]) + (f", … ({len(names)} in all)" if len(names) > limit else "")


def format_info(info: dict) -> str:
    """:func:`read_info`'s dict as a short text for people."""
    t, c = info["train"], info["classes"]
    ratio = f"{info['ratio']:g}" if isinstance(info["ratio"], (int, float)) else "?"
    lines = [f"{info['out']}: proxyds {info['format']} proxy of {info['dataset']} (proxyds {info['proxyds_version']})",
             f"  selector {info['selector']}, ratio {ratio}, seed {info['seed']}, space {info['space']}",
             f"  train {t['examples']:,} examples ({t['usable']:,} usable) -> selected {t['selected']:,}"]
    for name, split in info["splits"].items():
        lines.append(f"  split {name}: {split['rows']:,} rows in {split['files']} files")
    m = info["manifest"]
    if m is not None:
        lines.append(f"  manifest: {m['rows']:,} rows, {m['selected']:,} selected, {m['skipped']:,} skipped")
    lines.append(f"  classes: {len(c['kept'])} of {c['total']} kept" + (f"; dropped {_names(c['dropped'])}"
                                                                          if c["dropped"] else ""))
    if c["dropped"] or c["label_reduction"] not in ("off", None):
        lines.append(f"  label reduction: {c['label_reduction']}")
    for role, p in info["probes"].items():
        lines.append(f"  probe {role:6s} {p['config']:>14s}  MACs {p['macs']:>14,}  reference acc "
                     f"{p['reference_accuracy']:.4f}  train acc {p['train_accuracy']:.4f}")
    if info["weak_probes"]:
        lines.append(f"  WARNING: {len(info['weak_probes'])} probe(s) not above chance (see proxy.json summary.weak_probes)")
    if info["recipe"]:
        lines.append(f"  recommended proxy training: {info['recipe']}")
    lines.append(f"  files: {len(info['files'])}, {_size(info['total_bytes'])}")
    lines += [f"    {pattern}  {_size(size)}" + (f" in {n} files" if n > 1 else "")
              for pattern, (n, size) in _file_groups(info["files"]).items()]
    return "\n".join(lines)


def _file_groups(files: dict) -> dict[str, tuple[int, int]]:
    """(count, bytes) by name; a split's shards as one line (``data/train-*-of-*.parquet``)."""
    groups: dict[str, list[tuple[str, int]]] = {}
    for path, size in files.items():
        key = re.sub(r"\d+", "*", path) if path.startswith("data/") else path
        groups.setdefault(key, []).append((path, size or 0))
    return {(key if len(members) > 1 else members[0][0]): (len(members), sum(size for _, size in members))
            for key, members in groups.items()}
