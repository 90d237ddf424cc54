"""tools/bench_neighbors.py: deterministic features, and the whole benchmark runs on a tiny case."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

_PATH = Path(__file__).resolve().parents[1] / "tools" / "bench_neighbors.py"
_spec = importlib.util.spec_from_file_location("bench_neighbors", _PATH)
bench = importlib.util.module_from_spec(_spec)
sys.modules["bench_neighbors"] = bench
_spec.loader.exec_module(bench)


def test_features_are_deterministic_and_balanced():
    x, y = bench.make_features(500, num_classes=20, d=16, seed=3)
    x2, y2 = bench.make_features(500, num_classes=20, d=16, seed=3)
    assert x.shape == (500, 16) and x.dtype == np.float32
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    assert np.bincount(y).tolist() == [25] * 20
    assert not np.array_equal(bench.make_features(500, num_classes=20, d=16, seed=4)[0], x)


def test_importance_proportions():
    imp = bench.draw_importance(20_000, seed=0)
    assert set(np.unique(imp)) == {1.0, 2.0, 6.0}
    assert abs((imp == 2.0).mean() - 0.66) < 0.02 and abs((imp == 6.0).mean() - 0.10) < 0.02


def test_exact_blocked_matches_brute_force():
    ref, _ = bench.make_features(300, num_classes=10, d=8, seed=1)
    x, _ = bench.make_features(100, num_classes=10, d=8, seed=2)
    brute = ((x[:, None, :].astype(np.float64) - ref[None]) ** 2).sum(-1).argmin(1)
    np.testing.assert_array_equal(bench.exact_blocked(ref, x, block=32), brute)


def test_benchmark_smoke(tmp_path):
    doc = tmp_path / "bench.md"
    assert bench.main(["--train", "2000", "--ref", "200", "--classes", "10", "--dim", "16", "--sweep-queries", "300",
                       "--doc", str(doc)]) == 0
    text = doc.read_text()
    assert "| exact (NeighborMap, torch CPU) | " in text and "(HNSW_DEFAULTS)" in text
    assert "### Sweep on 300 sampled queries" in text
