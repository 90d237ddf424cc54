"""The stage cache: a damaged entry is a warning and a recompute, never a traceback."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from proxyds.pipeline.build import build
from proxyds.pipeline.cache import StageCache

from helpers import tiny_config


def _entry(tmp_path):
    cache = StageCache(tmp_path)
    cache.save("scores", "k" * 64, {"a": np.arange(5)}, {"n": 5})
    return cache, next((tmp_path / "stages").glob("scores-*.npz"))


def test_round_trip(tmp_path):
    cache, _ = _entry(tmp_path)
    arrays, meta = cache.load("scores", "k" * 64)
    np.testing.assert_array_equal(arrays["a"], np.arange(5))
    assert meta == {"n": 5} and cache.load("scores", "j" * 64) is None


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "npy", "meta-not-json", "no-meta"])
def test_damaged_entry_is_ignored_with_a_warning(tmp_path, caplog, damage):
    cache, path = _entry(tmp_path)
    data = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 4)
    elif damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "npy":
        np.save(open(path, "wb"), np.arange(3))
    elif damage == "meta-not-json":
        np.savez(open(path, "wb"), a=np.arange(5), __meta__=np.frombuffer(b"\xff{", np.uint8))
    else:
        np.savez(open(path, "wb"), a=np.arange(5))
    with caplog.at_level(logging.WARNING, logger="proxyds.pipeline.cache"):
        assert cache.load("scores", "k" * 64) is None
    assert "ignoring damaged cache entry" in caplog.text and path.name in caplog.text


def test_build_recomputes_a_damaged_stage(tiny_mnist1d, tmp_path, caplog):
    first = build(tiny_config(f"hf:{tiny_mnist1d}", tmp_path / "a"))
    entries = sorted((tmp_path / "work" / "stages").glob("score-train-*.npz"))
    assert entries
    for path in entries:
        path.write_bytes(path.read_bytes()[:100])  # a kill-truncated or disk-damaged entry
    with caplog.at_level(logging.INFO, logger="proxyds"):
        second = build(tiny_config(f"hf:{tiny_mnist1d}", tmp_path / "b"))
    assert "ignoring damaged cache entry" in caplog.text and "stage score-train: reusing" not in caplog.text
    assert (first.out / "manifest.parquet").read_bytes() == (second.out / "manifest.parquet").read_bytes()
