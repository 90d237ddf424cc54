"""The manifest: one row per ORIGINAL train example, so every input example is accounted for.

Columns: ``index`` (position in the train split), ``key``, ``shard`` (source file), ``label``,
``case`` (1..4 of its nearest reference example, see :mod:`proxyds.selection.importance`),
``importance`` (higher = more likely kept), ``keep_prob`` (importance / its sum over the rows
that may be drawn, sums to 1; 0 for skipped rows and for classes label reduction dropped),
``neighbor`` (index of the nearest reference example), ``distance`` (squared L2 in PCA
space), ``selected`` (in the proxy) and ``proxy_label`` (its label in the proxy after label
reduction's renumbering; -1 when its class was dropped) and ``status`` (``ok``, or
``skipped: <reason>`` for an example that could not be used; it has importance 0, case 0). Written with a fixed schema and no timestamps, so the
same build writes the same bytes.

In memory, the two string columns are kept compact whatever their content (1.28M rows of
ImageNet): keys as a :class:`StringColumn` (one UTF-8 buffer plus int64 offsets) and statuses
as a :class:`StatusColumn` (int32 codes into the few distinct strings). A fixed-width numpy
string array would instead widen every row to the longest one: one 250-character skip reason
among 1.28M rows made a 1.2 GB array.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["MANIFEST_SCHEMA", "OK", "StringColumn", "StatusColumn", "write_manifest", "read_manifest"]

OK = "ok"

MANIFEST_SCHEMA = pa.schema([
    ("index", pa.int64()),
    ("key", pa.string()),
    ("shard", pa.string()),
    ("label", pa.int64()),
    ("case", pa.int8()),
    ("importance", pa.float64()),
    ("keep_prob", pa.float64()),
    ("neighbor", pa.int64()),
    ("distance", pa.float32()),
    ("selected", pa.bool_()),
    ("proxy_label", pa.int64()),
    ("status", pa.string()),
])


def write_manifest(path: Path, columns: dict[str, np.ndarray | list]) -> Path:
    """Write the manifest columns (all of equal length) to ``path`` as parquet."""
    missing = set(MANIFEST_SCHEMA.names) - set(columns)
    if missing:
        raise ValueError(f"manifest is missing columns {sorted(missing)}")
    lengths = {name: len(columns[name]) for name in MANIFEST_SCHEMA.names}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"manifest columns differ in length: {lengths}")
    table = pa.table({name: _arrow(columns[name], MANIFEST_SCHEMA.field(name).type)
                      for name in MANIFEST_SCHEMA.names}, schema=MANIFEST_SCHEMA)
    pq.write_table(table, path, compression="zstd", row_group_size=1 << 20)
    return Path(path)


def read_manifest(path: str | Path) -> pa.Table:
    """Read a manifest (a proxy directory or the parquet file itself), schema-checked."""
    path = Path(path)
    if path.is_dir():
        path = path / "manifest.parquet"
    if not path.exists():
        raise FileNotFoundError(f"no manifest at {path}")
    table = pq.read_table(path)
    missing = set(MANIFEST_SCHEMA.names) - set(table.column_names)
    if missing:
        raise ValueError(f"{path} is not a proxyds manifest: missing columns {sorted(missing)}")
    return table


def _arrow(values, type_: pa.DataType) -> pa.Array:
    if isinstance(values, (StringColumn, StatusColumn)):
        return values.to_arrow()
    return pa.array(values, type=type_)


class StringColumn:
    """Strings as one UTF-8 buffer (``data``, uint8) plus ``offsets`` (int64, one more than
    rows): row ``i`` is ``data[offsets[i]:offsets[i + 1]]``. Costs 8 bytes a row plus the text,
    so one long string does not widen the others. Read-only; indexes and iterates as a list."""

    __slots__ = ("data", "offsets")

    def __init__(self, data: np.ndarray, offsets: np.ndarray):
        data, offsets = np.asarray(data), np.asarray(offsets)
        if data.dtype != np.uint8 or data.ndim != 1:
            raise ValueError(f"StringColumn data must be a 1-D uint8 array (got {data.dtype}, shape {data.shape})")
        if offsets.dtype != np.int64 or offsets.ndim != 1 or len(offsets) < 1 or offsets[0] != 0 \
                or offsets[-1] != len(data) or (np.diff(offsets) < 0).any():
            raise ValueError(f"StringColumn offsets must be int64, non-decreasing from 0 to len(data)={len(data)} "
                             f"(got {offsets.dtype}, {offsets[:3].tolist()}..{offsets[-1:].tolist()})")
        self.data, self.offsets = data, offsets

    @classmethod
    def from_strings(cls, strings: Iterable[str]) -> "StringColumn":
        if isinstance(strings, StringColumn):
            return strings
        arr = pa.array(strings if isinstance(strings, (list, tuple)) else list(strings), type=pa.large_string())
        if arr.null_count:
            raise ValueError(f"StringColumn holds strings, not None ({arr.null_count} None values)")
        n, offsets, data = len(arr), arr.buffers()[1], arr.buffers()[2]
        offsets = np.frombuffer(offsets, np.int64)[arr.offset:arr.offset + n + 1] if n else np.zeros(1, np.int64)
        data = np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)
        return cls(data[offsets[0]:offsets[-1]].copy(), offsets - offsets[0])

    @property
    def nbytes(self) -> int:
        return self.data.nbytes + self.offsets.nbytes

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i) -> str:
        n = len(self)
        if not isinstance(i, (int, np.integer)) or isinstance(i, bool) or not -n <= i < n:
            raise IndexError(f"StringColumn index {i!r} out of range for {n} rows (an int is expected)")
        i = int(i) % n
        return self.data[self.offsets[i]:self.offsets[i + 1]].tobytes().decode("utf-8")

    def __iter__(self) -> Iterator[str]:
        for start in range(0, len(self), 1 << 16):  # a chunk of Python strings at a time
            yield from self.to_arrow(start, start + (1 << 16)).to_pylist()

    def __eq__(self, other) -> bool:
        if isinstance(other, StringColumn):
            return np.array_equal(self.offsets, other.offsets) and np.array_equal(self.data, other.data)
        return NotImplemented

    def to_arrow(self, start: int = 0, stop: int | None = None) -> pa.Array:
        """Rows ``start:stop`` as a pyarrow ``string`` array (as the manifest stores them)."""
        stop = len(self) if stop is None else min(stop, len(self))
        offsets = self.offsets[start:stop + 1]
        arr = pa.LargeStringArray.from_buffers(stop - start, pa.py_buffer(offsets - offsets[0]),
                                               pa.py_buffer(self.data[offsets[0]:offsets[-1]]))
        return arr.cast(pa.string())

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}_data": self.data, f"{prefix}_offsets": self.offsets}

    @classmethod
    def from_arrays(cls, arrays: dict, prefix: str) -> "StringColumn":
        return cls(arrays[f"{prefix}_data"], arrays[f"{prefix}_offsets"])


class StatusColumn:
    """Per-row statuses, ``ok`` or ``skipped: <reason>``, as int32 ``codes`` into ``names``
    (the distinct strings, ``names[0] == "ok"``): 4 bytes a row whatever the reasons say."""

    __slots__ = ("codes", "names", "_lookup")

    def __init__(self, codes: np.ndarray, names: list[str]):
        names = list(names)
        codes = np.asarray(codes, dtype=np.int32)
        if not names or names[0] != OK:
            raise ValueError(f"StatusColumn names must start with {OK!r} (got {names[:3]})")
        if len(codes) and (codes.min() < 0 or codes.max() >= len(names)):
            raise ValueError(f"StatusColumn codes must lie in 0..{len(names) - 1} (got {codes.min()}..{codes.max()})")
        self.codes, self.names = codes, names
        self._lookup = {name: c for c, name in enumerate(names)}

    @classmethod
    def from_strings(cls, statuses: Iterable[str]) -> "StatusColumn":
        if isinstance(statuses, StatusColumn):
            return statuses
        lookup = {OK: 0}
        codes = np.fromiter((lookup.setdefault(s, len(lookup)) for s in statuses), dtype=np.int32)
        return cls(codes, list(lookup))

    @property
    def ok(self) -> np.ndarray:
        return self.codes == 0

    @property
    def nbytes(self) -> int:
        return self.codes.nbytes + sum(len(n.encode()) for n in self.names)

    def set(self, pos: int, status: str) -> None:
        code = self._lookup.setdefault(status, len(self.names))
        if code == len(self.names):
            self.names.append(status)
        self.codes[pos] = code

    def counts(self) -> dict[str, int]:
        """How many rows have each status other than ``ok``, by status."""
        counts = np.bincount(self.codes, minlength=len(self.names))
        return {self.names[c]: int(counts[c]) for c in range(1, len(self.names)) if counts[c]}

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, i) -> str:
        return self.names[self.codes[i]]

    def __iter__(self) -> Iterator[str]:
        return (self.names[c] for c in self.codes.tolist())

    def to_arrow(self) -> pa.Array:
        return pa.array(self.names, type=pa.string()).take(pa.array(self.codes))

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}_codes": self.codes, **StringColumn.from_strings(self.names).to_arrays(f"{prefix}_names")}

    @classmethod
    def from_arrays(cls, arrays: dict, prefix: str) -> "StatusColumn":
        return cls(arrays[f"{prefix}_codes"], list(StringColumn.from_arrays(arrays, f"{prefix}_names")))
