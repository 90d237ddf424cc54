"""Parquet shards that ``datasets.load_dataset(OUT)`` reads back with the original features.

Rows stream in, are encoded with ``Features.encode_example`` and written a row group at a
time, so memory holds one row group, never a shard. The Arrow schema carries the
``huggingface`` metadata (``Features.arrow_schema``), which is how ``datasets`` gets
``ClassLabel`` names, ``Image`` and sequence types back from a plain parquet file. Writer
options mirror ``Dataset.to_parquet`` where the installed ``datasets`` provides them
(uncompressed PLAIN media columns, content-defined chunking, page index), so the shards
deduplicate on the Hub like shards written by ``datasets`` itself.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
import pyarrow.parquet as pq

from proxyds.sinks.shards import plan_shards

__all__ = ["ParquetShardWriter"]

_SPLIT_RE = re.compile(r"^[A-Za-z0-9_]+$")


def check_split_name(split: str) -> None:
    """Split names become file-name prefixes matched by ``data/{split}-*``: keep them plain."""
    if not isinstance(split, str) or not _SPLIT_RE.match(split):
        raise ValueError(
            f"split name {split!r} is invalid: use letters, digits and '_' only (e.g. 'train', 'test')"
        )


def prepare_split_dir(out_dir: Path, split: str, ext: str, names: list[str] | None = None) -> None:
    """Create ``out_dir``; refuse to mix a split's new shards with ones already there. With
    ``names`` (a writer of some of the split's shards, beside writers of the others) only those
    shards must not exist yet."""
    out_dir.mkdir(parents=True, exist_ok=True)
    existing = sorted(out_dir.glob(f"{split}-*.{ext}")) if names is None else \
        [out_dir / n for n in names if (out_dir / n).exists()]
    if existing:
        raise FileExistsError(f"{out_dir} already holds {split!r} shards (e.g. {existing[0].name})")


class ParquetShardWriter:
    """Write rows of one split as ``{split}-{i:05d}-of-{n:05d}.parquet`` shards in ``out_dir``.

    Use as a context manager. ``write`` takes a row as ``datasets`` yields it (an ``Image``
    column as ``{"bytes": b, "path": p}``, ``ClassLabel`` as int, sequences as lists) and
    stores the values unchanged: image bytes are kept as given, never re-encoded. Shards
    hold ``rows_per_shard`` rows in row groups of ``rows_per_group``; their final names
    (which need the shard count) are given on a clean exit. ``plan`` (rows per shard, e.g.
    from :func:`~proxyds.sinks.shards.even_shards`) replaces ``rows_per_shard`` when the total
    is known in advance; ``counts`` gives the rows per shard. ``shards`` then names the plan's
    shards this writer writes (one process's share, when several write a split in parallel): it
    is given exactly their rows, in order, and names them by their numbers in the whole plan
    (``-of-`` the plan's shard count). Zero rows still give one valid
    empty shard carrying the schema. The same rows written twice give identical bytes.
    """

    def __init__(
        self,
        out_dir: Path,
        split: str,
        features: datasets.Features,
        *,
        rows_per_shard: int = 10_000,
        rows_per_group: int = 1_000,
        plan: Sequence[int] | None = None,
        shards: Sequence[int] | None = None,
    ) -> None:
        check_split_name(split)
        if not isinstance(features, datasets.Features):
            if not isinstance(features, dict):
                raise ValueError(f"features must be a datasets.Features, got {type(features).__name__}")
            features = datasets.Features(features)
        for name, value in (("rows_per_shard", rows_per_shard), ("rows_per_group", rows_per_group)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if plan is not None and (not plan or any(int(c) < 0 for c in plan)):
            raise ValueError(f"plan must be a non-empty list of per-shard row counts >= 0, got {plan!r}")
        self.plan = None if plan is None else [int(c) for c in plan]
        self._ids = plan_shards(self.plan, shards)  # the plan's shards written here, or None
        self._shares = shards  # None: this writer writes the whole split
        self.counts: list[int] = []
        self.out_dir = Path(out_dir)
        self.split = split
        self.features = features
        self.rows_per_shard = rows_per_shard
        self.rows_per_group = min(rows_per_group, rows_per_shard)
        self.paths: list[Path] = []
        self.num_rows = 0
        self._schema = features.arrow_schema
        self._columns = set(features)
        self._images = [c for c, f in features.items() if isinstance(f, datasets.Image)]
        self._options = _writer_options(features, self._schema)
        self._partials: list[Path] = []
        self._writer: pq.ParquetWriter | None = None
        self._shard_rows = 0
        self._buffer: list[dict[str, Any]] = []  # rows from write(), not yet an Arrow part
        self._parts: list[pa.Table] = []  # the next row group's rows, in order
        self._pending = 0  # rows in _buffer and _parts
        self._open = False

    def __enter__(self) -> ParquetShardWriter:
        n = None if self.plan is None else len(self.plan)
        names = None if self._shares is None else [f"{self.split}-{i:05d}-of-{n:05d}.parquet" for i in self._ids]
        prepare_split_dir(self.out_dir, self.split, "parquet", names)
        self._open = True
        return self

    def write(self, row: dict[str, Any]) -> None:
        """Encode one row and buffer it; a full buffer becomes a row group."""
        if not self._open:
            raise RuntimeError("ParquetShardWriter.write called outside its `with` block")
        keys = set(row)
        if keys != self._columns:
            missing, extra = sorted(self._columns - keys), sorted(keys - self._columns)
            raise ValueError(
                f"row columns do not match the features: missing {missing}, unexpected {extra}; "
                f"expected exactly {sorted(self._columns)}"
            )
        if self._ids is not None and self.num_rows >= self._planned():
            raise ValueError(f"more rows than the shard plan's {self._planned()}")
        encoded = self.features.encode_example(row)
        for col in self._images:
            encoded[col] = _image_storage(row[col], col, encoded[col])
        self._buffer.append(encoded)
        self._pending += 1
        self.num_rows += 1
        self._flush_if_full()

    def write_table(self, table: pa.Table) -> None:
        """Append rows already in the shards' Arrow storage form (e.g. taken from parquet files
        written with these features), unchanged: the same row groups and bytes as writing them
        one by one with :meth:`write`."""
        if not self._open:
            raise RuntimeError("ParquetShardWriter.write_table called outside its `with` block")
        if not isinstance(table, pa.Table) or not table.schema.equals(self._schema, check_metadata=False):
            got = table.schema if isinstance(table, pa.Table) else type(table).__name__
            raise ValueError(f"write_table needs a pyarrow Table with the features' schema {self._schema}, got {got}")
        if self._ids is not None and self.num_rows + len(table) > self._planned():
            raise ValueError(f"more rows than the shard plan's {self._planned()}")
        start = 0
        while start < len(table):  # up to the next point where write() would flush
            room = min(self.rows_per_group, self._capacity(self._buffer_shard()) - self._shard_rows) - self._pending
            piece = table.slice(start, max(1, room))
            self._seal()
            self._parts.append(piece)
            self._pending += len(piece)
            self.num_rows += len(piece)
            start += len(piece)
            self._flush_if_full()

    def _planned(self) -> int:
        return sum(self.plan[i] for i in self._ids)

    def _buffer_shard(self) -> int:
        return len(self._partials) - (self._writer is not None)  # the shard the buffer goes to

    def _flush_if_full(self) -> None:
        if self._pending >= self.rows_per_group or \
                self._shard_rows + self._pending >= self._capacity(self._buffer_shard()):
            self._flush()

    def _seal(self) -> None:
        """Buffered rows from write() become one Arrow part, so parts keep their order."""
        if self._buffer:
            self._parts.append(pa.Table.from_pylist(self._buffer, schema=self._schema))
            self._buffer = []

    def __exit__(self, exc_type, exc, tb) -> None:
        self._open = False
        if exc_type is not None:
            self._abort()
            return
        try:
            self._flush()
            if self._writer is None and not self._partials and self._ids != []:
                self._start_shard()  # zero rows: one empty shard with the schema
            while self._ids is not None and len(self._partials) < len(self._ids):
                self._start_shard()  # planned shards left empty
            self._close_shard()
            if self._ids is not None and self.counts != [self.plan[i] for i in self._ids]:
                raise ValueError(f"shard row counts {self.counts} do not match the plan {self.plan} "
                                 f"(shards {self._ids})")
            n = len(self._partials) if self.plan is None else len(self.plan)
            for k, partial in enumerate(self._partials):
                final = self.out_dir / f"{self.split}-{self._number(k):05d}-of-{n:05d}.parquet"
                os.replace(partial, final)
                self.paths.append(final)
        except BaseException:
            self._abort()
            raise

    def _flush(self) -> None:
        if not self._pending:
            return
        if self._writer is None:
            self._start_shard()
            while self._capacity(len(self._partials) - 1) == 0 and len(self._partials) < len(self._ids or ()):
                self._start_shard()  # a planned empty shard
        self._seal()
        table = self._parts[0] if len(self._parts) == 1 else pa.concat_tables(self._parts)
        self._writer.write_table(table.combine_chunks(), row_group_size=self._pending)
        self._shard_rows += self._pending
        self.counts[-1] += self._pending
        self._parts, self._pending = [], 0
        if self._shard_rows >= self._capacity(len(self._partials) - 1):
            self._close_shard()

    def _capacity(self, k: int) -> int:
        """Rows the writer's ``k``-th shard holds."""
        if self._ids is None:
            return self.rows_per_shard
        return self.plan[self._ids[k]] if k < len(self._ids) else 0

    def _number(self, k: int) -> int:
        """The writer's ``k``-th shard's number in the whole plan."""
        return k if self._ids is None else self._ids[k]

    def _start_shard(self) -> None:
        self._close_shard()
        partial = self.out_dir / f".{self.split}-{self._number(len(self._partials)):05d}.parquet.partial"
        self._partials.append(partial)
        self.counts.append(0)
        self._writer = pq.ParquetWriter(partial, schema=self._schema, **self._options)
        self._shard_rows = 0

    def _close_shard(self) -> None:
        if self._writer is None:
            return
        cdc = self._options.get("use_content_defined_chunking")
        if cdc:  # what `Dataset.to_parquet` records, so readers know how pages were cut
            self._writer.add_key_value_metadata({"content_defined_chunking": json.dumps(cdc)})
        self._writer.close()
        self._writer = None
        self._shard_rows = 0

    def _abort(self) -> None:
        """Drop everything this writer produced: a failed split must not look complete."""
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception:
                pass
            self._writer = None
        for p in self._partials + self.paths:
            p.unlink(missing_ok=True)
        self.paths, self.counts = [], []


def _image_storage(value: Any, column: str, encoded: Any) -> Any:
    """Arrow storage for a top-level ``Image`` value, keeping the original bytes.

    ``Image.encode_example`` drops the bytes of a ``{"bytes", "path"}`` dict whenever
    ``path`` names an existing local file (relative paths resolve against the working
    directory), which would swap the original bytes for an unrelated file and leave a
    path that means nothing in OUT. Keep given bytes as they are; read a local file only
    when no bytes were given, and keep just its base name as ``path``.
    """
    if value is None:
        return None
    if isinstance(value, dict):
        data, path = value.get("bytes"), value.get("path")
    else:  # a path string, PIL image or array: as datasets encodes it
        data, path = encoded["bytes"], encoded["path"]
    if data is None and path is not None and os.path.isfile(path):
        data, path = Path(path).read_bytes(), os.path.basename(path)
    if data is None:
        raise ValueError(f"image column {column!r}: no bytes and no readable local file (path={path!r})")
    return {"bytes": bytes(data), "path": path}


def _writer_options(features: datasets.Features, schema: pa.Schema) -> dict[str, Any]:
    """ParquetWriter options as ``Dataset.to_parquet`` would choose them, when available."""
    options: dict[str, Any] = {}
    try:
        from datasets.arrow_writer import get_parquet_column_options

        options.update(get_parquet_column_options(features, schema))
    except ImportError:  # older datasets: pyarrow defaults
        pass
    cdc = getattr(datasets.config, "DEFAULT_CDC_OPTIONS", None)
    if cdc:
        options.update(use_content_defined_chunking=dict(cdc), write_page_index=True)
    return options
