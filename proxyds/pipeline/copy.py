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
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from proxyds.errors import BadInput
from proxyds.pipeline.copy_parquet import direct_parquet_ok, parquet_blocks
from proxyds.pipeline.scan import read_examples, read_shard
from proxyds.pipeline.tarplan import tar_plan
from proxyds.progress import progress
from proxyds.sinks.convert import IMAGE_EXTENSIONS, row_to_wds_fields, wds_features, wds_fields_to_row
from proxyds.sinks.parquet import ParquetShardWriter
from proxyds.sinks.shards import even_shards
from proxyds.sinks.wds import WdsShardWriter
from proxyds.sources.base import Example

__all__ = ["Relabel", "copy_split", "copy_split_streamed"]

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
    copy = _SplitCopy(plan, source, index, keep, data, split, class_names, relabel)
    info, damaged = source.info, {e["shard"] for e in index.shard_errors}
    if plan.format == "wds" and info.format == "wds" and _local(source):
        for name, found in _tar_shards(source, split, plan.on_error, damaged, keep):
            if isinstance(found, Example):
                copy.example(found)
            else:
                copy.examples(found, name)
    elif plan.format != "wds" and info.format == "hf" and direct_parquet_ok(source, copy.features):
        for start, n, item in parquet_blocks(source, index, keep, relabel, copy.features, damaged, split,
                                             plan.on_error):
            if isinstance(item, Example):
                copy.example(item)
            else:
                copy.rows(start, n, item)
    else:
        for ex in read_examples(source, split, plan.on_error):
            copy.example(ex)
    return copy.finish()


def copy_split_streamed(plan, source, index, keep: np.ndarray | None, data: Path, split: str, class_names,
                        relabel: Relabel | None = None) -> dict:
    """:func:`copy_split` with every example streamed through the source's reader (the
    previous implementation, kept for any input and as the reference the direct way must match)."""
    copy = _SplitCopy(plan, source, index, keep, data, split, class_names, relabel)
    for ex in read_examples(source, split, plan.on_error):
        copy.example(ex)
    return copy.finish()


def _local(source) -> bool:
    files = getattr(source, "files", None)
    return bool(files) and len(files) == len(source.shards) and all(os.path.isfile(f) for f in files)


def _tar_shards(source, split: str, on_error: str, damaged: set[str], keep: np.ndarray | None):
    """``(shard, [(key, fields)])`` for every shard whose tar headers say where its fields lie (as
    file ranges), in order; the examples of other shards streamed, as ``(shard, Example)`` each.
    Together, what ``read_examples`` gives.

    Walking a tar's headers is one small read after another, each waiting on the last: against a
    cold disk, latency. So the next shards' headers are walked in threads (``os.pread`` lets go of
    the GIL), and a shard's kept members are announced to the kernel (``POSIX_FADV_WILLNEED``)
    before they are copied, so the disk always has reads queued."""
    paths = [None if name in damaged else path for path, name in zip(source.files, source.shards)]
    start = 0
    with ThreadPoolExecutor(_WALKERS, thread_name_prefix="tar-walk") as pool:
        for i, examples in enumerate(_in_order(pool, paths)):
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
    against the scan's index, so a source that changed since is an error, never a wrong proxy."""

    def __init__(self, plan, source, index, keep, data: Path, split: str, class_names, relabel):
        self.plan, self.info, self.index, self.keep = plan, source.info, index, keep
        self.data, self.split, self.class_names, self.relabel = data, split, class_names, relabel
        self.total = len(index) if keep is None else int(keep.sum())
        self.features = self.info.features
        if relabel is not None and self.features is not None:
            self.features = relabel.features(self.features, self.info.label_column)
        self.pos, self.writer, self.convert = 0, None, None
        self.bar = progress(total=self.total, desc=f"write {split}", unit="ex")

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

    def finish(self) -> dict:
        self.bar.close()
        if self.pos != len(self.index):
            raise BadInput(f"{self.split} source changed while it was read ({self.pos} examples now, "
                           f"{len(self.index)} when scanned)")
        if self.writer is None:  # nothing kept: still write one valid, empty shard
            self.total = 0
            self._open(None)
        self.writer.__exit__(None, None, None)
        writer, data, split = self.writer, self.data, self.split
        if self.plan.format != "wds":
            return {"files": [p.name for p in writer.paths], "rows": writer.num_rows}
        index = {"__kind__": "wids-shard-index-v1", "wids_version": 1, "name": f"{split}",
                 "shardlist": [{"url": f"data/{p.name}", "nsamples": c, "filesize": p.stat().st_size}
                               for p, c in zip(writer.paths, writer.counts)]}
        (data.parent / f"{split}.wids.json").write_text(json.dumps(index, indent=1) + "\n")
        return {"files": [p.name for p in writer.paths], "rows": writer.num_rows, "counts": list(writer.counts),
                "wids_index": f"{split}.wids.json"}

    def _open(self, payload) -> None:
        self.writer, self.convert = _open_writer(self.plan, self.info, self.features, payload, self.data,
                                                 self.split, self.class_names, self.total)
        self.writer.__enter__()


def _open_writer(plan, info, features, payload, data: Path, split: str, class_names, total: int):
    rows = plan.config.rows_per_shard
    if plan.format == "wds":
        writer = WdsShardWriter(data, split, plan=even_shards(total, rows))
        if info.format == "wds":
            return writer, dict
        # One image extension for the whole split (the first row's), so every example has the same fields.
        first = row_to_wds_fields(payload, features, info.label_column) if payload is not None else {}
        ext = next((f.rsplit(".", 1)[-1] for f in first if f.rsplit(".", 1)[-1] in IMAGE_EXTENSIONS), None)
        return writer, lambda row: row_to_wds_fields(row, features, info.label_column, image_ext=ext)
    if info.format == "hf":
        return ParquetShardWriter(data, split, features, plan=even_shards(total, rows)), dict
    if payload is None:
        raise ValueError(f"cannot write an empty {split!r} split of WebDataset input as parquet (no schema)")
    features = wds_features(payload, class_names, label_field=info.label_column)
    return (ParquetShardWriter(data, split, features, plan=even_shards(total, rows)),
            lambda fields: wds_fields_to_row(fields, label_field=info.label_column))
