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
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["MANIFEST_SCHEMA", "write_manifest", "read_manifest"]

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
    table = pa.table({name: pa.array(columns[name], type=MANIFEST_SCHEMA.field(name).type)
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
