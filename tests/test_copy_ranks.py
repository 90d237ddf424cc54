"""Every rank writes its share of a split's output shards (shard i by rank i mod W), reading only
the input shards holding its examples; together the shares are exactly the single-process copy.

Each rank's work (``copy_shards`` with ``World(rank, W)``) runs here one after another in one
process, which is what it does under torchrun minus the collectives (tested in test_distributed)."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from proxyds.pipeline import copy as copy_mod
from proxyds.pipeline.copy import Relabel, copy_shards, copy_split, split_record
from proxyds.pipeline.distributed import World
from proxyds.pipeline.scan import scan
from proxyds.sinks.shards import even_shards
from proxyds.sources import open_source

from test_copy_direct import _files, _parquet, _plan, _wds

pytestmark = pytest.mark.usefixtures("hf_offline")


def _input(tmp_path, kind: str):
    if kind == "wds":
        source = open_source(f"wds:{_wds(tmp_path / 'in')}", "train")
        return source, scan(source, "train", input_column="jpg")
    source = open_source(f"hf:{_parquet(tmp_path / 'in')}/{{split}}-*.parquet", "train")
    return source, scan(source, "train", input_column="image", on_error="skip")


def _shares(tmp_path, monkeypatch, source, index, keep, fmt, world, relabel=None):
    """The single-process copy's record, each rank's share and the input shards each rank read."""
    names = ("a", "b", "c") if relabel is None else relabel.names
    plan = _plan(fmt, "skip")
    single = copy_split(plan, source, index, keep, tmp_path / "one" / "data", "train", names, relabel)
    read = []
    real_read_shard, real_tar_plan, real_pf = copy_mod.read_shard, copy_mod.tar_plan, pq.ParquetFile
    monkeypatch.setattr(copy_mod, "read_shard", lambda s, i, *a, **k: read.append(i) or real_read_shard(s, i, *a, **k))
    monkeypatch.setattr(copy_mod, "tar_plan", lambda p: read.append(source.files.index(p)) or real_tar_plan(p))
    monkeypatch.setattr(pq, "ParquetFile", lambda p, *a, **k: read.append(source.files.index(p)) or real_pf(p, *a, **k))
    parts, reads = [], []
    for rank in range(world):
        read.clear()
        parts.append(copy_shards(plan, source, index, keep, tmp_path / "many" / "data", "train", names, relabel,
                                 World(rank, world)))
        reads.append(set(read))
    return single, parts, reads


@pytest.mark.parametrize("kind, fmt", [("wds", "wds"), ("hf", "parquet"), ("wds", "parquet"), ("hf", "wds")])
@pytest.mark.parametrize("world", [2, 3])
def test_ranks_shares_are_the_single_process_copy(tmp_path, monkeypatch, kind, fmt, world):
    """Direct wds, direct parquet and streamed (both conversions; hf rows' images alternate JPEG
    and PNG, so a rank must name its fields as the split's first kept example does)."""
    source, index = _input(tmp_path, kind)
    keep = (np.random.default_rng(3).random(len(index)) < 0.6) & index.ok
    relabel = Relabel(np.array([1, -1, 0]), ["c", "a"]) if fmt == "parquet" else None
    if relabel is not None:
        keep &= index.labels != 1
    single, parts, reads = _shares(tmp_path, monkeypatch, source, index, keep, fmt, world, relabel)
    kept = np.flatnonzero(keep)
    shard_of = np.repeat(np.arange(len(single["files"])), even_shards(len(kept), 4))  # _plan: 4 rows per shard
    converts = (kind == "wds") != (fmt == "wds")
    for rank, (part, read) in enumerate(zip(parts, reads)):
        assert part["shards"] == list(range(rank, len(single["files"]), world))
        # only the input shards holding this rank's examples are read (and, for a conversion, the
        # shard of the split's first kept example: it says how every example's fields are named)
        mine = kept[np.isin(shard_of, part["shards"])]
        assert read <= {int(i) for i in index.shard_ids[mine]} | ({int(index.shard_ids[kept[0]])} if converts else set())
    record = split_record(parts, tmp_path / "many" / "data", "train", fmt)
    assert record == single and _files(tmp_path / "many") == _files(tmp_path / "one")


def test_a_rank_without_shards_reads_and_writes_nothing(tmp_path, monkeypatch):
    source, index = _input(tmp_path, "wds")
    keep = np.zeros(len(index), bool)
    keep[[9, 10, 20]] = True  # fewer than 8 kept: one output shard, rank 0's
    single, parts, reads = _shares(tmp_path, monkeypatch, source, index, keep, "wds", 2)
    assert parts[1] == {"shards": [], "files": [], "counts": [], "bytes": [], "sha256": []} and reads[1] == set()
    assert reads[0] == {1, 2}  # the two input tars holding the kept examples, not 0 or 3
    assert split_record(parts, tmp_path / "many" / "data", "train", "wds") == single
    assert _files(tmp_path / "many") == _files(tmp_path / "one")
