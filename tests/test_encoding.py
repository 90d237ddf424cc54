"""Keys and statuses held compactly: memory grows with the rows, never with the longest string."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from proxyds.manifest import StatusColumn, StringColumn
from proxyds.pipeline.scan import SplitIndex

N = 1_280_000  # ImageNet's train split


def _encoded_nbytes(index: SplitIndex) -> int:
    return sum(a.nbytes for a in index.to_arrays().values())


def _imagenet_like(reason: str | None) -> SplitIndex:
    keys = StringColumn(np.frombuffer(b"".join(b"n01440764_%030d" % i for i in range(N)), np.uint8),
                        np.arange(N + 1, dtype=np.int64) * 40)
    index = SplitIndex(keys, np.zeros(N, np.int64), np.zeros(N, np.int32), ["train-000000.tar"],
                       StatusColumn(np.zeros(N, np.int32), ["ok"]))
    if reason is not None:
        index.skip(N // 2, reason)
    return index


def test_one_long_reason_does_not_widen_every_row():
    """1.28M keys of 40 characters: one 250-character skip reason adds its own bytes, no more
    (a fixed-width array would grow by N x 250 x 4 bytes, ~1.2 GB)."""
    plain, skipped = _imagenet_like(None), _imagenet_like("undecodable input (" + "x" * 230 + ")")
    assert len(skipped.status[N // 2]) >= 250 and len(plain.keys[0]) == 40
    assert _encoded_nbytes(skipped) <= 1.1 * _encoded_nbytes(plain)
    assert skipped.keys.nbytes + skipped.status.nbytes <= 1.1 * (plain.keys.nbytes + plain.status.nbytes)
    assert _encoded_nbytes(plain) <= N * 65  # a row: 40 bytes of text, offset 8, status 4, label 8, shard 4


def test_one_long_key_does_not_widen_every_row():
    keys = [f"k{i:05d}" for i in range(10_000)]
    short = StringColumn.from_strings(keys)
    long = StringColumn.from_strings(keys[:-1] + ["k" * 250])
    assert long.nbytes - short.nbytes == 250 - 6


@pytest.mark.parametrize("strings", [[], [""], ["a", "", "ünïcode ✓", "x" * 300, "b"]])
def test_string_column_round_trips(strings):
    col = StringColumn.from_strings(strings)
    assert len(col) == len(strings) and list(col) == strings
    assert [col[i] for i in range(len(strings))] == strings
    if strings:
        assert col[-1] == strings[-1]
    assert col.to_arrow().equals(pa.array(strings, pa.string()))
    assert StringColumn.from_arrays(col.to_arrays("k"), "k") == col


def test_string_column_iterates_past_a_chunk():
    strings = [str(i) for i in range(70_000)]
    assert list(StringColumn.from_strings(strings)) == strings
    assert StringColumn.from_strings(strings).to_arrow(65_535, 65_537).to_pylist() == ["65535", "65536"]


def test_string_column_rejects_bad_input():
    with pytest.raises(ValueError, match="None"):
        StringColumn.from_strings(["a", None])
    with pytest.raises(ValueError, match="offsets"):
        StringColumn(np.zeros(3, np.uint8), np.array([0, 2, 1, 3]))
    with pytest.raises(IndexError, match="out of range"):
        StringColumn.from_strings(["a"])[1]


def test_status_column_codes_and_counts():
    status = StatusColumn.from_strings(["ok", "skipped: a", "ok", "skipped: b", "skipped: a"])
    assert status.names == ["ok", "skipped: a", "skipped: b"] and status.codes.tolist() == [0, 1, 0, 2, 1]
    status.set(0, "skipped: c")
    status.set(1, "ok")
    assert list(status) == ["skipped: c", "ok", "ok", "skipped: b", "skipped: a"]
    assert status.ok.tolist() == [False, True, True, False, False]
    assert status.counts() == {"skipped: a": 1, "skipped: b": 1, "skipped: c": 1}
    assert status.to_arrow().to_pylist() == list(status)
    back = StatusColumn.from_arrays(status.to_arrays("status"), "status")
    assert list(back) == list(status) and back.names == status.names


def test_status_column_rejects_bad_codes():
    with pytest.raises(ValueError, match="must start with 'ok'"):
        StatusColumn(np.zeros(2, np.int32), ["skipped: x"])
    with pytest.raises(ValueError, match="codes must lie in 0..1"):
        StatusColumn(np.array([0, 2]), ["ok", "skipped: x"])


def test_split_index_round_trips_through_arrays():
    index = SplitIndex(["a", "bb", "ccc"], np.array([0, 1, -1]), np.array([0, 0, 1], np.int32), ["s0", "s1"],
                       ["ok", "ok", "skipped: no label"], [{"shard": "s1"}])
    index.skip(0, "duplicate key")
    back = SplitIndex.from_arrays(index.to_arrays(), index.shard_errors)
    assert list(back.keys) == ["a", "bb", "ccc"] and back.shards == ["s0", "s1"]
    assert list(back.status) == ["skipped: duplicate key", "ok", "skipped: no label"]
    assert back.skipped_counts() == {"skipped: duplicate key": 1, "skipped: no label": 1}
    assert back.ok.tolist() == [False, True, False]
