"""tools/mnist1d_benchmark_rows.py writes exactly the rows the in-memory benchmark trains and
measures on, so `evaluate hf:DIR --reference-split validation --evaluation-split test` runs the same data."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from proxyds.harness.data import load_data
from proxyds.harness.settings import BENCHMARKS

_PATH = Path(__file__).resolve().parents[1] / "tools" / "mnist1d_benchmark_rows.py"
_spec = importlib.util.spec_from_file_location("mnist1d_benchmark_rows", _PATH)
rows_tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rows_tool)


def _split(root: Path, split: str):
    table = pa.concat_tables([pq.read_table(f) for f in sorted((root / "data").glob(f"{split}-*.parquet"))])
    return np.array(table.column("x").to_pylist(), np.float32), np.array(table.column("label").to_pylist())


def test_rows_are_the_in_memory_benchmarks(tmp_path):
    root = rows_tool.write_rows(tmp_path / "rows", "tiny")
    data = load_data(BENCHMARKS["tiny"]["data"])
    for split, x, y in (("train", data.x_train, data.y_train), ("validation", data.x_ref, data.y_ref),
                        ("test", data.x_eval, data.y_eval)):
        xs, ys = _split(root, split)
        assert np.array_equal(xs, x[:, 0].numpy()) and np.array_equal(ys, y.numpy()), split
