"""Write a whole proxy directory: shards, manifest, dataset card, and proxy.json last.

Everything is written into a temporary sibling of OUT and renamed into place at the end, so
OUT is either absent or complete; ``proxy.json`` is the last file written inside it (a reader
that finds no proxy.json knows the directory is incomplete).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

import proxyds
from proxyds.manifest import write_manifest
from proxyds.sinks.atomic import atomic_output_dir, sha256_file
from proxyds.sinks.card import write_card
from proxyds.sinks.convert import IMAGE_EXTENSIONS, row_to_wds_fields, wds_features, wds_fields_to_row
from proxyds.sinks.parquet import ParquetShardWriter
from proxyds.sinks.wds import WdsShardWriter

__all__ = ["write_proxy", "FORMAT_VERSION"]

FORMAT_VERSION = 1


def write_proxy(plan, class_names, train_idx, ref_idx, manifest: dict, summary: dict) -> Path:
    """Write OUT for a finished selection; returns OUT."""
    cfg = plan.config
    with atomic_output_dir(cfg.out, overwrite=cfg.overwrite) as tmp:
        data = tmp / "data"
        splits = {
            "train": _copy_split(plan, plan.train, train_idx, manifest["selected"], data, "train", class_names),
            "test": _copy_split(plan, plan.reference, ref_idx, None, data, "test", class_names),
        }
        write_manifest(tmp / "manifest.parquet", manifest)
        ext = "parquet" if plan.format == "parquet" else "tar"
        write_card(tmp, data_files={s: [f"data/{s}-*.{ext}"] for s in splits},
                   summary_md=card_text(summary, splits, plan.format), pretty_name=f"{summary['dataset']} proxy")
        files = {p.relative_to(tmp).as_posix(): {"sha256": sha256_file(p), "bytes": p.stat().st_size}
                 for p in sorted(tmp.rglob("*")) if p.is_file()}
        record = {"format_version": FORMAT_VERSION, "proxyds_version": proxyds.__version__,
                  "config": cfg.to_dict(), "seed": cfg.seed, "splits": splits, "summary": summary, "files": files}
        (tmp / "proxy.json").write_text(json.dumps(record, indent=1, sort_keys=False) + "\n")
    return cfg.out


def _copy_split(plan, source, index, keep: np.ndarray | None, data: Path, split: str, class_names) -> dict:
    """Stream ``source`` again and write the kept examples unchanged in the output format."""
    total = len(index) if keep is None else int(keep.sum())
    info = source.info
    bar = tqdm(total=total, desc=f"write {split}", unit="ex", leave=False, disable=None)
    writer, convert = None, None
    for pos, ex in enumerate(source):
        if pos >= len(index) or ex.key != index.keys[pos]:
            raise RuntimeError(f"{split} source changed while it was read (at position {pos}, key {ex.key!r})")
        if keep is not None and not keep[pos]:
            continue
        if writer is None:
            writer, convert = _open_writer(plan, info, ex.payload, data, split, class_names)
            writer.__enter__()
        if plan.format == "wds":
            writer.write(ex.key, convert(ex.payload))
        else:
            writer.write(convert(ex.payload))
        bar.update(1)
    bar.close()
    if writer is None:  # nothing kept: still write one valid, empty shard
        writer, _ = _open_writer(plan, info, None, data, split, class_names)
        writer.__enter__()
    writer.__exit__(None, None, None)
    return {"files": [p.name for p in writer.paths], "rows": writer.num_rows,
            **({"counts": list(writer.counts)} if hasattr(writer, "counts") else {})}


def _open_writer(plan, info, payload, data: Path, split: str, class_names):
    rows = plan.config.rows_per_shard
    if plan.format == "wds":
        writer = WdsShardWriter(data, split, maxcount=rows)
        if info.format == "wds":
            return writer, dict
        # One image extension for the whole split (the first row's), so every example has the same fields.
        first = row_to_wds_fields(payload, info.features, info.label_column) if payload is not None else {}
        ext = next((f.rsplit(".", 1)[-1] for f in first if f.rsplit(".", 1)[-1] in IMAGE_EXTENSIONS), None)
        return writer, lambda row: row_to_wds_fields(row, info.features, info.label_column, image_ext=ext)
    if info.format == "hf":
        return ParquetShardWriter(data, split, info.features, rows_per_shard=rows), dict
    if payload is None:
        raise ValueError(f"cannot write an empty {split!r} split of WebDataset input as parquet (no schema)")
    features = wds_features(payload, class_names, label_field=info.label_column)
    return (ParquetShardWriter(data, split, features, rows_per_shard=rows),
            lambda fields: wds_fields_to_row(fields, label_field=info.label_column))


def card_text(summary: dict, splits: dict, fmt: str) -> str:
    """The human part of the dataset card: what this is, how it was made, how to load it."""
    p = summary["probes"]
    cases = summary["cases"]
    lines = [
        f"# {summary['dataset']} data proxy",
        "",
        f"A {summary['num_selected']:,}-example subset ({summary['num_selected'] / summary['num_train']:.1%}) of the "
        f"{summary['num_train']:,}-example train split of `{summary['source']}`, drawn by proxyds "
        "(Park 2019, *Data Proxy Generation for Fast and Efficient Neural Architecture Search*): examples are weighted "
        "by how the search space's cheapest and most expensive configurations (the probes) treat their nearest "
        "reference example, then drawn without replacement in proportion to that weight.",
        "",
        "| split | rows | files |",
        "|---|---:|---:|",
        *[f"| {s} | {v['rows']:,} | {len(v['files'])} |" for s, v in splits.items()],
        "",
        f"Search space `{summary['space']}`; probes:",
        "",
        "| probe | config | MACs | reference accuracy |",
        "|---|---|---:|---:|",
        *[f"| {role} | {v['config']} | {v['macs']:,} | {v['reference_accuracy']:.4f} |" for role, v in p.items()],
        "",
        "Reference examples by case (1 both correct, 2 both wrong, 3 only the better probe correct, "
        "4 only the worse probe correct): " + ", ".join(f"{n} {c:,}" for n, c in zip(cases["names"], cases["reference"])),
        "",
        "## Load",
        "",
        "```python",
        "from datasets import load_dataset",
        "ds = load_dataset(\"PATH/TO/THIS/DIR\")  # train = the proxy, test = the reference split",
        "```",
        "",
        "`manifest.parquet` has one row per ORIGINAL train example (key, shard, label, case, importance, keep_prob, "
        "selected); `proxy.json` records the full configuration and the sha256 of every file.",
    ]
    if fmt == "wds":
        lines += ["", "The shards are WebDataset tars: `webdataset.WebDataset(\"data/train-{000000..N}.tar\")` reads them too."]
    return "\n".join(lines)
