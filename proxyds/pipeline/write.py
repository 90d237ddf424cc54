"""Write a whole proxy directory: shards, manifest, dataset card, and proxy.json last.

Everything is written into a temporary sibling of OUT and renamed into place at the end, so
OUT is either absent or complete; ``proxy.json`` is the last file written inside it (a reader
that finds no proxy.json knows the directory is incomplete).

Under torchrun every rank writes its share of the shards (output shard i by rank i mod W, the
shard plan depending only on the kept count) into rank 0's temporary directory; rank 0 then
puts the shares' records together and writes the manifest, card and proxy.json, and renames.
The bytes are the same for any world size; a failure on any rank fails all and leaves no OUT.
"""

from __future__ import annotations

import hashlib
import json
import logging
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np

import proxyds
from proxyds.manifest import write_manifest
from proxyds.pipeline.card import write_figure, write_proxy_card
from proxyds.pipeline.copy import Relabel, copy_shards, split_record
from proxyds.pipeline.distributed import World
from proxyds.sinks.atomic import atomic_output_dir, sha256_file
from proxyds.sinks.parquet import check_split_name

__all__ = ["write_proxy", "reference_split_name", "FORMAT_VERSION", "CONTENT_DIGEST_FIELD", "record_digest"]

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
# proxy.json's own digest (see record_digest): its files' sha256s live inside it, so without
# this an edit to its summary or recipe would go unnoticed by ``proxyds verify``.
CONTENT_DIGEST_FIELD = "content_sha256"
# Where and how this copy was written, not what it holds: left out of proxy.json, so the same
# build written elsewhere (or resumed) gives the same bytes.
_LOCAL_SETTINGS = ("out", "workdir", "overwrite")


def write_proxy(plan, class_names, train_idx, ref_idx, manifest: dict, summary: dict, *,
                label_map: np.ndarray | None = None, kept_classes: np.ndarray | None = None,
                ref_keep: np.ndarray | None = None) -> Path:
    """Write OUT for a finished selection; returns OUT.

    With label reduction, ``kept_classes`` (bool per class) restricts the reference split to
    the kept classes and ``label_map`` renumbers labels (old -> new, -1 dropped); the output's
    class names are the kept classes' names. ``ref_keep`` marks the reference examples written
    (usable and of a kept class).
    """
    cfg = plan.config
    relabel = None
    if kept_classes is not None and not np.all(kept_classes):
        relabel = Relabel(label_map, [n for n, k in zip(class_names, kept_classes) if k])
        class_names = relabel.names
    info = plan.train.info
    label_column = (info.label_column if info.format == "wds" else "cls") if plan.format == "wds" else \
        info.label_column if info.format == "hf" else "label"
    ref_name = reference_split_name(plan.reference)
    world = getattr(plan, "world", None) or World()
    error = None
    try:
        with _shared_output_dir(cfg, world) as tmp:
            data = tmp / "data"
            keeps = {"train": (plan.train, train_idx, manifest["selected"]),
                     ref_name: (plan.reference, ref_idx, ref_keep)}
            parts = {}
            try:
                for split, (source, index, keep) in keeps.items():
                    parts[split] = copy_shards(plan, source, index, keep, data, split, class_names, relabel, world,
                                                digests=True)
            except Exception as e:  # noqa: BLE001 - raised on every rank just below
                error = e
            world.raise_together(error)
            shares = world.gather(parts)
            if world.main:
                splits = {s: split_record([p[s] for p in shares], data, s, plan.format) for s in keeps}
                hashed = {f"data/{f}": {"sha256": h, "bytes": n} for p in shares for part in p.values()
                          for f, h, n in zip(part["files"], part["sha256"], part["bytes"])}
                _finish(tmp, plan, class_names, label_column, ref_name, manifest, summary, splits, hashed)
    except Exception as e:
        if world.size == 1:
            raise
        error = e  # every rank passes here alike, or (rank 0's finishing failed) rank 0 alone
    if world.size > 1:
        world.raise_together(error)
    return cfg.out


@contextmanager
def _shared_output_dir(cfg, world: World):
    """``atomic_output_dir`` for OUT, entered on rank 0, its temporary path given to every rank."""
    if world.size == 1:
        with atomic_output_dir(cfg.out, overwrite=cfg.overwrite, marker="proxy.json") as tmp:
            yield tmp
        return
    with ExitStack() as stack:
        tmp = world.on_main(lambda: stack.enter_context(atomic_output_dir(cfg.out, overwrite=cfg.overwrite,
                                                                          marker="proxy.json")))
        yield Path(world.gather(None if tmp is None else str(tmp))[0])


def _finish(tmp: Path, plan, class_names, label_column: str, ref_name: str, manifest: dict, summary: dict,
            splits: dict, hashed: dict) -> None:
    """Everything after the shards: manifest, figure, card, and proxy.json last. ``hashed``: the
    shards' digests, taken by the processes that wrote them."""
    cfg, info = plan.config, plan.train.info
    write_manifest(tmp / "manifest.parquet", manifest)
    figure = write_figure(tmp, cfg, summary)
    files = _digests(tmp, known=hashed)
    write_proxy_card(tmp, plan, summary, splits, files, class_names=class_names, label_field=label_column,
                     figure=figure)
    files.update(_digests(tmp, only=["README.md"]))
    files = dict(sorted(files.items()))
    record = {"format_version": FORMAT_VERSION, "proxyds_version": proxyds.__version__,
              "config": {k: v for k, v in cfg.to_dict().items() if k not in _LOCAL_SETTINGS}, "seed": cfg.seed,
              "output": {"format": plan.format, "label_column": label_column, "input_format": info.format,
                         "reference_split": ref_name},
              "splits": splits, "summary": summary, "files": files}
    record[CONTENT_DIGEST_FIELD] = record_digest(json.loads(json.dumps(record)))  # as a reader will parse it
    (tmp / "proxy.json").write_text(json.dumps(record, indent=1, sort_keys=False) + "\n")


def reference_split_name(source) -> str:
    """The output's name for the reference split: the input's (``validation``, ``val``, ``test``, …),
    so a proxy of ImageNet keeps ``validation``; ``test`` when the input's name cannot name a second
    output split (it is ``train``, the proxy's name, or not letters, digits and '_')."""
    name = getattr(source, "split", None)
    try:
        check_split_name(name)
        if name != "train":
            return name
    except ValueError:
        pass
    log.info("the reference split %r is written as 'test' (the output's train split is the proxy)", name)
    return "test"


def record_digest(record: dict) -> str:
    """sha256 (hex) of proxy.json's canonical content: every field but ``content_sha256``, as
    ``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=True)`` encoded as ASCII.

    Canonical, so indentation, key order and escaping of the file itself do not matter; only
    what a reader parses does. It catches edits and damage, not a forger (who can recompute it).
    """
    content = {k: v for k, v in record.items() if k != CONTENT_DIGEST_FIELD}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _digests(root: Path, only: list[str] | None = None, known: dict | None = None) -> dict[str, dict]:
    paths = [root / p for p in only] if only else sorted(p for p in root.rglob("*") if p.is_file())
    names = [p.relative_to(root).as_posix() for p in paths]
    return {name: (known or {}).get(name) or {"sha256": sha256_file(p), "bytes": p.stat().st_size}
            for name, p in zip(names, paths)}
