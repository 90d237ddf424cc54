"""Parquet output shards like WebDataset's: a multiple of 8 with equal row counts (+-1), so
``split_dataset_by_node`` and streaming workers split a proxy evenly, by shard."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from proxyds.sinks import ParquetShardWriter
from proxyds.sinks.shards import even_shards

from helpers import sink_features, sink_rows


def test_writer_follows_the_plan(tmp_path):
    rows = sink_rows(101)
    plan = even_shards(101, 10)
    with ParquetShardWriter(tmp_path, "train", sink_features(), plan=plan, rows_per_group=4) as w:
        for row in rows:
            w.write(row)
    assert len(w.paths) == 16 and w.counts == plan and max(plan) - min(plan) <= 1
    assert [pq.ParquetFile(p).metadata.num_rows for p in w.paths] == plan
    assert [p.name for p in w.paths] == [f"train-{i:05d}-of-00016.parquet" for i in range(16)]
    back = [r for p in w.paths for r in pq.read_table(p).to_pylist()]
    assert [r["text"] for r in back] == [r["text"] for r in rows]


def test_writer_refuses_rows_off_the_plan(tmp_path):
    with pytest.raises(ValueError, match="more rows than the shard plan's 2"):
        with ParquetShardWriter(tmp_path / "a", "train", sink_features(), plan=[1, 1]) as w:
            for row in sink_rows(3):
                w.write(row)
    assert not list((tmp_path / "a").glob("*.parquet"))
    with pytest.raises(ValueError, match=r"do not match the plan \[2, 2\]"):
        with ParquetShardWriter(tmp_path / "b", "train", sink_features(), plan=[2, 2]) as w:
            for row in sink_rows(3):
                w.write(row)
    with pytest.raises(ValueError, match="plan must be a non-empty list"):
        ParquetShardWriter(tmp_path / "c", "train", sink_features(), plan=[])


def test_even_shards_rejects_bad_input():
    with pytest.raises(ValueError, match="per_shard must be an int >= 1"):
        even_shards(10, 0)
    with pytest.raises(ValueError, match="n must be an int >= 0"):
        even_shards(-1, 10)


def test_small_proxy_has_8_even_shards_split_evenly_by_node(parquet_proxy):
    from datasets import load_dataset
    from datasets.distributed import split_dataset_by_node

    out = parquet_proxy.out
    train = json.loads((out / "proxy.json").read_text())["splits"]["train"]
    counts = [pq.ParquetFile(out / "data" / f).metadata.num_rows for f in train["files"]]
    assert len(counts) == 8 and max(counts) - min(counts) <= 1 and sum(counts) == train["rows"]
    ds = load_dataset(str(out), split="train", streaming=True)
    assert ds.num_shards == 8
    for world in (2, 4):
        nodes = [split_dataset_by_node(ds, rank=r, world_size=world) for r in range(world)]
        assert all(node.num_shards == 8 // world for node in nodes)  # split by shard, not by skipping rows
        shares = [sum(1 for _ in node) for node in nodes]
        assert sum(shares) == train["rows"] and max(shares) - min(shares) <= 1


@pytest.mark.parametrize("kind", ["parquet", "wds"])
def test_writers_sharing_a_plan_write_the_same_files_as_one(tmp_path, kind):
    """Several writers each given some of the plan's shards (as ranks under torchrun write
    them) produce, together, exactly the files one writer of the whole plan produces."""
    from proxyds.sinks import WdsShardWriter

    rows, plan = sink_rows(41), even_shards(41, 6)  # 8 shards of 5 or 6 rows
    starts = [sum(plan[:i]) for i in range(len(plan) + 1)]

    def write(out, shards):
        ids = range(len(plan)) if shards is None else shards
        mine = [r for i in ids for r in rows[starts[i]:starts[i + 1]]]
        if kind == "parquet":
            with ParquetShardWriter(out, "train", sink_features(), plan=plan, shards=shards, rows_per_group=4) as w:
                for row in mine:
                    w.write(row)
        else:
            with WdsShardWriter(out, "train", plan=plan, shards=shards) as w:
                for row in mine:
                    w.write(row["text"].replace(" ", "_").replace(".", "_"), {"txt": row["text"].encode()})
        return w

    whole = write(tmp_path / "one", None)
    parts = [write(tmp_path / "many", list(range(r, len(plan), 3))) for r in range(3)]  # 8 shards, 3 writers
    assert sorted(p.name for w in parts for p in w.paths) == sorted(p.name for p in whole.paths)
    assert parts[1].counts == [plan[i] for i in (1, 4, 7)]
    for p in whole.paths:
        assert (tmp_path / "many" / p.name).read_bytes() == p.read_bytes()
    nothing = write(tmp_path / "none", [])  # a writer with no shard of the plan writes nothing
    assert nothing.paths == [] and not list((tmp_path / "none").iterdir())


def test_writer_shards_must_name_shards_of_the_plan(tmp_path):
    for bad in ([2, 0], [0, 0], [3], [-1]):
        with pytest.raises(ValueError, match="shards must be increasing shard numbers"):
            ParquetShardWriter(tmp_path, "train", sink_features(), plan=[1, 1, 1], shards=bad)
    with pytest.raises(ValueError, match="shards needs a plan"):
        ParquetShardWriter(tmp_path, "train", sink_features(), shards=[0])
