"""The copy pass: a split's kept examples written in the output format, original bytes unchanged.

Two ways to get them there, giving the same bytes:

- **streamed** (:func:`copy_split_streamed`, any input and output format): every example is
  read again through the source's reader, checked against the scan, and the kept ones are
  written from their payloads.
- **direct**, what :func:`copy_split` uses where it can: WebDataset in and out, local tars —
  each tar's headers are walked by seeking (:func:`~proxyds.pipeline.tarplan.tar_plan`) and a
  kept member's bytes are copied from the input file by the kernel; skipped examples' data are
  never read. Parquet in and out (``hf:`` local parquet files) — per shard, only the row groups
  holding kept rows are read, the kept rows taken with pyarrow and written as Arrow, never
  decoded to Python. A shard the scan found damaged, or one the direct way is not sure to read
  as the reader does, is streamed; so is everything else (hf → wds, wds → parquet, remote input).
"""

from __future__ import annotations

import json
import logging
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from proxyds.errors import BadInput
from proxyds.pipeline.copy_parquet import direct_parquet_ok, parquet_blocks
from proxyds.pipeline.distributed import World
from proxyds.pipeline.scan import read_examples, read_shard
from proxyds.pipeline.tarplan import tar_plan
from proxyds.progress import progress
from proxyds.sinks.atomic import sha256_file
from proxyds.sinks.convert import IMAGE_EXTENSIONS, row_to_wds_fields, wds_features, wds_fields_to_row
from proxyds.sinks.parquet import ParquetShardWriter
from proxyds.sinks.shards import even_shards
from proxyds.sinks.wds import WdsShardWriter
from proxyds.sources.base import Example

__all__ = ["Relabel", "copy_split", "copy_shards", "copy_split_streamed", "split_record"]

log = logging.getLogger(__name__)

_WALKERS = 8  # tars whose headers are walked at once (reads queued on the disk)


class Relabel:
    """Renumber the label of a payload (hf row or wds fields) after label reduction."""

    def __init__(self, label_map: np.ndarray, names: list[str]):
        self.label_map, self.names = label_map, names

    def features(self, features, label_column: str):
        from datasets import ClassLabel, Features

        if not isinstance(features[label_column], ClassLabel):
            return features
        return Features({**features, label_column: ClassLabel(names=self.names)})

    def __call__(self, payload: dict, label: int, info) -> dict:
        new = int(self.label_map[label])
        if info.format == "wds":
            return {**payload, info.label_column: str(new).encode("ascii")}
        return {**payload, info.label_column: new}


def copy_split(plan, source, index, keep: np.ndarray | None, data: Path, split: str, class_names,
               relabel: Relabel | None = None) -> dict:
    """Write ``source``'s kept examples (``keep``, by position in ``index``; None = all) into
    ``data`` in the plan's format, directly where it can (see the module's note); returns what
    proxy.json records for the split."""
    part = copy_shards(plan, source, index, keep, data, split, class_names, relabel)
    return split_record([part], data, split, plan.format)


def copy_shards(plan, source, index, keep: np.ndarray | None, data: Path, split: str, class_names,
                relabel: Relabel | None = None, world: World | None = None, digests: bool = False) -> dict:
    """:func:`copy_split`'s work for one process of ``world``: the output shards i with
    i mod world.size == world.rank, under their final names, reading only the input they need
    (whole input shards or row groups holding none of their examples are skipped). Returns
    this process's share (:func:`split_record` puts the shares together); with ``digests`` it
    holds each shard's sha256 too, taken here so no single process hashes every shard."""
    world = world or World()
    copy = _SplitCopy(plan, source, index, keep, data, split, class_names, relabel, world)
    info, damaged = source.info, {e["shard"] for e in index.shard_errors}
    if plan.format == "wds" and info.format == "wds" and _local(source):
        for name, found in _tar_shards(source, split, plan.on_error, damaged, copy.keep, copy.need, copy.sizes):
            if isinstance(found, Example):
                copy.example(found)
            elif isinstance(found, int):
                copy.skip(found)
            else:
                copy.examples(found, name)
    elif plan.format != "wds" and info.format == "hf" and direct_parquet_ok(source, copy.features):
        for start, n, item in parquet_blocks(source, index, copy.keep, relabel, copy.features, damaged, split,
                                             plan.on_error, copy.need):
            if isinstance(item, Example):
                copy.example(item)
            else:
                copy.rows(start, n, item)
    else:
        for ex in _streamed(source, split, plan.on_error, copy.need, copy.sizes):
            if isinstance(ex, int):
                copy.skip(ex)
            else:
                copy.example(ex)
    part = copy.finish(digests)
    if world.size > 1:
        log.info("rank %d/%d wrote %s shards %s of %d", world.rank, world.size, split, part["shards"],
                 len(copy.shard_plan))
    return part


def copy_split_streamed(plan, source, index, keep: np.ndarray | None, data: Path, split: str, class_names,
                        relabel: Relabel | None = None) -> dict:
    """:func:`copy_split` with every example streamed through the source's reader (the
    previous implementation, kept for any input and as the reference the direct way must match)."""
    copy = _SplitCopy(plan, source, index, keep, data, split, class_names, relabel)
    for ex in read_examples(source, split, plan.on_error):
        copy.example(ex)
    return split_record([copy.finish()], data, split, plan.format)


def split_record(parts: list[dict], data: Path, split: str, fmt: str) -> dict:
    """What proxy.json records for a split, from every process's share of its shards (in any
    order); for WebDataset also writes the split's wids index next to ``data``."""
    shards = sorted(s for p in parts for s in zip(p["shards"], p["files"], p["counts"], p["bytes"]))
    files, counts = [s[1] for s in shards], [s[2] for s in shards]
    if fmt != "wds":
        return {"files": files, "rows": sum(counts)}
    index = {"__kind__": "wids-shard-index-v1", "wids_version": 1, "name": f"{split}",
             "shardlist": [{"url": f"data/{name}", "nsamples": c, "filesize": size} for _, name, c, size in shards]}
    (data.parent / f"{split}.wids.json").write_text(json.dumps(index, indent=1) + "\n")
    return {"files": files, "rows": sum(counts), "counts": counts, "wids_index": f"{split}.wids.json"}


def _streamed(source, split: str, on_error: str, need: np.ndarray | None, sizes: np.ndarray):
    """``read_examples``, but an input shard ``need`` marks False is not read: its example count
    (from the scan) is given instead."""
    start = 0
    for i in range(len(source.shards)):
        if need is not None and not need[i]:
            start += int(sizes[i])
            yield int(sizes[i])
            continue
        for ex in read_shard(source, i, start, split, on_error):
            start += 1
            yield ex


def _local(source) -> bool:
    files = getattr(source, "files", None)
    return bool(files) and len(files) == len(source.shards) and all(os.path.isfile(f) for f in files)


def _tar_shards(source, split: str, on_error: str, damaged: set[str], keep: np.ndarray | None,
                need: np.ndarray | None, sizes: np.ndarray):
    """``(shard, [(key, fields)])`` for every shard whose tar headers say where its fields lie (as
    file ranges), in order; the examples of other shards streamed, as ``(shard, Example)`` each.
    Together, what ``read_examples`` gives; but a shard ``need`` marks False is not read, only
    its example count from the scan given, as ``(shard, count)``.

    Walking a tar's headers is one small read after another, each waiting on the last: against a
    cold disk, latency. So the next shards' headers are walked in threads (``os.pread`` lets go of
    the GIL), and a shard's kept members are announced to the kernel (``POSIX_FADV_WILLNEED``)
    before they are copied, so the disk always has reads queued."""
    skip = np.zeros(len(source.shards), bool) if need is None else ~need
    paths = [None if name in damaged or skip[i] else path
             for i, (path, name) in enumerate(zip(source.files, source.shards))]
    start = 0
    with ThreadPoolExecutor(_WALKERS, thread_name_prefix="tar-walk") as pool:
        for i, examples in enumerate(_in_order(pool, paths)):
            if skip[i]:
                start += int(sizes[i])
                yield source.shards[i], int(sizes[i])
                continue
            if examples is None:
                for ex in read_shard(source, i, start, split, on_error):
                    start += 1
                    yield ex.shard, ex
                continue
            _will_need(paths[i], examples, None if keep is None else keep[start:start + len(examples)])
            start += len(examples)
            yield source.shards[i], examples


def _in_order(pool: ThreadPoolExecutor, paths: list[str | None]):
    """``tar_plan`` of each path (None for None), in order, with up to ``_WALKERS`` walks ahead."""
    ahead: deque = deque()
    for path in paths:
        ahead.append(None if path is None else pool.submit(tar_plan, path))
        if len(ahead) > _WALKERS:
            found = ahead.popleft()
            yield None if found is None else found.result()
    while ahead:
        found = ahead.popleft()
        yield None if found is None else found.result()


def _will_need(path: str, examples, keep: np.ndarray | None) -> None:
    if not hasattr(os, "posix_fadvise"):
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        for j in range(len(examples)) if keep is None else np.flatnonzero(keep):
            for r in examples[j][1].values():
                os.posix_fadvise(fd, r.offset, r.size, os.POSIX_FADV_WILLNEED)
    finally:
        os.close(fd)


class _SplitCopy:
    """One split's writer, fed examples (or blocks of parquet rows) in scan order; each is checked
    against the scan's index, so a source that changed since is an error, never a wrong proxy.

    The output's shard plan depends on the kept count only; under torchrun this process writes
    the plan's shards ``world.shards(len(plan))``, so ``keep`` becomes the kept examples that fall
    in them, and ``need`` marks the input shards holding any (None: read them all)."""

    def __init__(self, plan, source, index, keep, data: Path, split: str, class_names, relabel,
                 world: World | None = None):
        self.plan, self.info, self.index, self.source = plan, source.info, index, source
        self.data, self.split, self.class_names, self.relabel = data, split, class_names, relabel
        self.total = len(index) if keep is None else int(keep.sum())
        self.shard_plan = even_shards(self.total, plan.config.rows_per_shard)
        self.world = world or World()
        self.shards = self.world.shards(len(self.shard_plan))
        self.split_keep, self.keep, self.need = keep, keep, None
        self.sizes = np.bincount(index.shard_ids, minlength=len(source.shards))
        if self.world.size > 1:
            kept = np.ones(len(index), bool) if keep is None else np.asarray(keep, bool)
            mine = np.zeros(len(index), bool)
            mine[kept] = np.isin(np.repeat(np.arange(len(self.shard_plan)), self.shard_plan), self.shards)
            self.keep, self.need = mine, np.zeros(len(source.shards), bool)
            self.need[np.unique(index.shard_ids[mine])] = True
        self.features = self.info.features
        if relabel is not None and self.features is not None:
            self.features = relabel.features(self.features, self.info.label_column)
        self.pos, self.writer, self.convert = 0, None, None
        self.bar = progress(total=int(self.total if self.keep is None else self.keep.sum()), desc=f"write {split}",
                            unit="ex")

    def skip(self, n: int) -> None:
        """The next ``n`` positions hold nothing this process writes, and were not read."""
        self.pos += n

    def example(self, ex: Example) -> None:
        pos = self.pos
        if pos >= len(self.index) or ex.key != self.index.keys[pos]:
            raise BadInput(f"{self.split} source changed while it was read (at position {pos}, key {ex.key!r})")
        self.pos += 1
        if self.keep is None or self.keep[pos]:
            self._write(pos, ex.key, ex.payload)

    def examples(self, found: list[tuple[str, dict]], shard: str) -> None:
        """A whole shard's ``(key, payload)``s, their keys checked at once; only the kept ones touched."""
        pos, n = self.pos, len(found)
        if pos + n > len(self.index) or [k for k, _ in found] != self.index.keys.to_arrow(pos, pos + n).to_pylist():
            for key, payload in found:  # one by one, to name the first that differs
                self.example(Example(key=key, label=None, payload=payload, shard=shard))
            return
        self.pos += n
        for j in range(n) if self.keep is None else np.flatnonzero(self.keep[pos:pos + n]):
            self._write(pos + int(j), *found[j])

    def _write(self, pos: int, key: str, payload: dict) -> None:
        if self.relabel is not None:
            payload = self.relabel(payload, self.index.labels[pos], self.info)
        if self.writer is None:
            self._open(payload)
        if self.plan.format == "wds":
            self.writer.write(key, self.convert(payload))
        else:
            self.writer.write(self.convert(payload))
        self.bar.update(1)

    def rows(self, start: int, n: int, table) -> None:
        """Positions ``start .. start + n`` read at once; ``table``: the kept ones, ready to write
        (a ``pyarrow.Table`` in the output schema, or a list of rows to encode)."""
        if start != self.pos or start + n > len(self.index):
            raise BadInput(f"{self.split} source changed while it was read (rows {start}..{start + n} of a split "
                           f"scanned with {len(self.index)}, expected to continue at {self.pos})")
        self.pos += n
        if len(table):
            if self.writer is None:
                self._open(None)
            if isinstance(table, list):
                for row in table:
                    self.writer.write(row)
            else:
                self.writer.write_table(table)
            self.bar.update(len(table))

    def finish(self, digests: bool = False) -> dict:
        self.bar.close()
        if self.pos != len(self.index):
            raise BadInput(f"{self.split} source changed while it was read ({self.pos} examples now, "
                           f"{len(self.index)} when scanned)")
        if self.writer is None and not self.shards:  # none of the split's shards is this process's
            return {"shards": [], "files": [], "counts": [], "bytes": [], "sha256": []}
        if self.writer is None:  # nothing kept: still write one valid, empty shard
            self._open(None)
        self.writer.__exit__(None, None, None)
        paths = self.writer.paths
        return {"shards": self.shards, "files": [p.name for p in paths], "counts": list(self.writer.counts),
                "bytes": [p.stat().st_size for p in paths], "sha256": [sha256_file(p) for p in paths] if digests else []}

    def _open(self, payload) -> None:
        converts = (self.plan.format == "wds") != (self.info.format == "wds")
        if converts and self.world.size > 1 and self.total:  # fields named as the split's first kept example says
            payload = self._first_kept()
        self.writer, self.convert = _open_writer(self.plan, self.info, self.features, payload, self.data,
                                                 self.split, self.class_names, self.shard_plan,
                                                 None if self.world.size == 1 else self.shards)
        self.writer.__enter__()

    def _first_kept(self) -> dict:
        """The split's first kept example's payload (relabelled), read again from its input shard:
        the one a single process opens its writer with, so every process converts alike."""
        keep = self.split_keep
        pos = 0 if keep is None else int(np.flatnonzero(keep)[0])
        shard = int(self.index.shard_ids[pos])
        start = int(self.sizes[:shard].sum())
        for j, ex in enumerate(read_shard(self.source, shard, start, self.split, self.plan.on_error)):
            if start + j == pos:
                if ex.key != self.index.keys[pos]:
                    raise BadInput(f"{self.split} source changed while it was read (at position {pos}, "
                                   f"key {ex.key!r})")
                return ex.payload if self.relabel is None else self.relabel(ex.payload, self.index.labels[pos],
                                                                               self.info)
        raise BadInput(f"{self.split} source changed while it was read (position {pos} is gone)")


def _open_writer(plan, info, features, payload, data: Path, split: str, class_names, shard_plan, shards):
    if plan.format == "wds":
        writer = WdsShardWriter(data, split, plan=shard_plan, shards=shards)
        if info.format == "wds":
            return writer, dict
        # One image extension for the whole split (the first row's), so every example has the same fields.
        first = row_to_wds_fields(payload, features, info.label_column) if payload is not None else {}
        ext = next((f.rsplit(".", 1)[-1] for f in first if f.rsplit(".", 1)[-1] in IMAGE_EXTENSIONS), None)
        return writer, lambda row: row_to_wds_fields(row, features, info.label_column, image_ext=ext)
    if info.format == "hf":
        return ParquetShardWriter(data, split, features, plan=shard_plan, shards=shards), dict
    if payload is None:
        raise ValueError(f"cannot write an empty {split!r} split of WebDataset input as parquet (no schema)")
    features = wds_features(payload, class_names, label_field=info.label_column)
    return (ParquetShardWriter(data, split, features, plan=shard_plan, shards=shards),
            lambda fields: wds_fields_to_row(fields, label_field=info.label_column))
