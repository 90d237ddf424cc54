"""Parquet in, parquet out without decoding: each shard's kept rows taken with pyarrow.

For an ``hf:`` source of local parquet shards whose columns are plain values, lists of them,
class labels and images (what ``Features.encode_example`` leaves as they are), the copy pass reads only
the row groups holding kept rows, ``take``s the kept rows and hands them to
:meth:`ParquetShardWriter.write_table` as Arrow: the same values, row groups and bytes as
decoding every row to Python and writing it back, at the cost of reading those row groups.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from proxyds.pipeline.scan import read_shard

__all__ = ["direct_parquet_ok", "parquet_blocks"]


def direct_parquet_ok(source, features) -> bool:
    """Whether ``source``'s rows can be copied as Arrow: local parquet shards read with pyarrow
    (``worker_safe``), top-level columns of plain values, lists of values, class labels and images."""
    import datasets

    if features is None or not getattr(source, "worker_safe", False):
        return False
    plain = (datasets.Value, datasets.ClassLabel, datasets.Image)
    lists = (datasets.List, datasets.LargeList)
    return all(type(f) in plain or (type(f) in lists and type(f.feature) is datasets.Value)
               for f in features.values())


def parquet_blocks(source, index, keep, relabel, features, damaged: set[str], split: str,
                   on_error: str, need=None) -> Iterator[tuple[int, int, object]]:
    """``(start, n, block)`` in scan order: positions ``start .. start + n`` of the split, and
    ``block`` the kept ones as a ``pyarrow.Table`` in the output schema (or a list of rows, when an
    image holds no bytes and must be encoded as the writer does); or ``(-1, 0, Example)`` for each
    example of a shard that is streamed instead (damaged in the scan, changed since, other types).
    A shard ``need`` (bool per shard, None: all) marks False is not opened: its positions (as the
    scan counted them) come as one empty block."""
    import pyarrow.parquet as pq

    schema = features.arrow_schema
    counts = np.bincount(index.shard_ids, minlength=len(source.shards))
    starts = None  # where each shard starts, from every footer: read only if a shard is streamed
    pos = 0
    for i, (path, name) in enumerate(zip(source.files, source.shards)):
        if need is not None and not need[i]:
            yield pos, int(counts[i]), schema.empty_table()
            pos += int(counts[i])
            continue
        pf = pq.ParquetFile(path)
        if name in damaged or pf.metadata.num_rows != counts[i] or not _same_types(pf.schema_arrow, schema) \
                or not _same_keys(pf, source, index, pos):
            if starts is None:
                starts = np.concatenate([[0], np.cumsum(source.shard_sizes())[:-1]])
            for ex in read_shard(source, i, int(starts[i]), split, on_error):
                pos += 1
                yield -1, 0, ex
            continue
        yield from _row_groups(pf, index, keep, relabel, features, schema, pos, source.info.label_column)
        pos += pf.metadata.num_rows


def _row_groups(pf, index, keep, relabel, features, schema, pos: int, label_column: str):
    import pyarrow as pa

    lo = 0
    for g in range(pf.num_row_groups):
        n = pf.metadata.row_group(g).num_rows
        kept = np.arange(n) if keep is None else np.flatnonzero(keep[pos + lo:pos + lo + n])
        if not len(kept):
            yield pos + lo, n, schema.empty_table()
        else:
            table = pf.read_row_group(g, columns=schema.names).take(pa.array(kept))
            columns = [table.column(c).combine_chunks() for c in schema.names]
            if relabel is not None:
                j = schema.names.index(label_column)
                new = relabel.label_map[index.labels[pos + lo + kept]]
                columns[j] = pa.array(new, type=schema.field(j).type)
            table = pa.Table.from_arrays(columns, schema=schema)
            yield pos + lo, n, table.to_pylist() if _image_without_bytes(table, features) else table
        lo += n


def _same_types(found, schema) -> bool:
    types = {f.name: f.type for f in found}
    return set(types) == set(schema.names) and all(types[f.name] == f.type for f in schema)


def _same_keys(pf, source, index, pos: int) -> bool:
    """The shard's keys are the scan's (a key column is read alone; position keys follow from counts)."""
    if source.key_column is None:
        return True
    found = [str(k) for k in pf.read(columns=[source.key_column]).column(0).to_pylist()]
    return found == index.keys.to_arrow(pos, pos + len(found)).to_pylist()


def _image_without_bytes(table, features) -> bool:
    """An image given by a path only: the writer reads that file (as it always has), so encode such rows."""
    import datasets
    import pyarrow.compute as pc

    for name, feature in features.items():
        if isinstance(feature, datasets.Image):
            col = table.column(name)
            if pc.sum(pc.and_(pc.is_valid(col), pc.is_null(pc.struct_field(col, "bytes")))).as_py():
                return True
    return False
