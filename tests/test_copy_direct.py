"""The copy pass's direct ways — tar headers walked by seeking with kept members' bytes copied by
the kernel, parquet rows taken as Arrow — write exactly the bytes of the streamed way they replace."""

from __future__ import annotations

import io
import tarfile
import types
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from helpers import encoded_image, sink_features, sink_rows
from proxyds.pipeline import copy as copy_mod
from proxyds.pipeline.copy import Relabel, copy_split, copy_split_streamed
from proxyds.pipeline.scan import scan
from proxyds.pipeline.tarplan import tar_plan
from proxyds.sinks.filecopy import RangeCopier
from proxyds.sinks.parquet import ParquetShardWriter
from proxyds.sources import open_source

pytestmark = pytest.mark.usefixtures("hf_offline")


def _plan(fmt: str, on_error: str = "raise"):
    return types.SimpleNamespace(format=fmt, on_error=on_error, config=types.SimpleNamespace(rows_per_shard=4))


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _both(tmp_path, plan, source, index, keep, relabel=None):
    """Output files of the direct and the streamed copy of one split."""
    got = []
    for name, fn in (("direct", copy_split), ("streamed", copy_split_streamed)):
        res = fn(plan, source, index, keep, tmp_path / name / "data", "train", ("a", "b", "c"), relabel)
        got.append((res, _files(tmp_path / name)))
    return got


def _add(tf: tarfile.TarFile, name: str, data: bytes | None) -> None:
    info = tarfile.TarInfo(name)
    if data is None:
        info.type = tarfile.DIRTYPE
        tf.addfile(info)
    else:
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))


def _wds(root: Path, *, damaged: bool = False) -> Path:
    """Four shards of 8 examples (.jpg of 0-3000 or 70,000 random bytes, .cls): plain ustar with a directory,
    a metadata member, an upper-case extension and fields out of order; GNU format; PAX (a long key,
    streamed); and a fourth, cut inside a member when ``damaged``."""
    rng = np.random.default_rng(0)
    root.mkdir()
    for s, fmt in enumerate((tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT)):
        path = root / f"train-{s:06d}.tar"
        with tarfile.open(path, "w", format=fmt) as tf:
            if s == 0:
                _add(tf, "somedir", None)
                _add(tf, "__meta__", b"not an example")
            for i in range(8):
                key = f"e{s}{i:02d}" + ("x" * 120 if s == 2 and i == 3 else "")
                size = int(rng.integers(0, 3000)) if i % 3 else 70_000 + i  # small ones read, large ones copied
                members = [("jpg", rng.bytes(size)), ("cls", str((s + i) % 3).encode())]
                for field, data in (members[::-1] if i % 2 else members):
                    _add(tf, f"{key}.{field.upper() if (s, i) == (0, 5) else field}", data)
        if damaged and s == 3:
            path.write_bytes(path.read_bytes()[:75_000])
    return root


@pytest.mark.parametrize("reduce", [False, True])
def test_wds_direct_copy_equals_streamed_and_copies_only_kept_members(tmp_path, monkeypatch, reduce):
    source = open_source(f"wds:{_wds(tmp_path / 'in')}", "train")
    index = scan(source, "train", input_column="jpg")
    keep = np.random.default_rng(1).random(len(index)) < 0.5
    relabel = None
    if reduce:  # class 1 dropped, 0 and 2 renumbered: the .cls member is rewritten, the rest copied
        keep &= index.labels != 1
        relabel = Relabel(np.array([1, -1, 0]), ["c", "a"])
    streamed, copied = [], []
    real_read_shard, real_copy, real_read = copy_mod.read_shard, RangeCopier.copy, RangeCopier.read
    monkeypatch.setattr(copy_mod, "read_shard",
                        lambda src, i, *a, **k: streamed.append(i) or real_read_shard(src, i, *a, **k))
    monkeypatch.setattr(RangeCopier, "copy", lambda self, r, fd: copied.append(r) or real_copy(self, r, fd))
    monkeypatch.setattr(RangeCopier, "read", lambda self, r: copied.append(r) or real_read(self, r))
    (direct_res, direct), (stream_res, stream) = _both(tmp_path, _plan("wds"), source, index, keep, relabel)
    assert direct_res == stream_res and direct.keys() == stream.keys() and direct == stream
    assert direct_res["rows"] == int(keep.sum()) and len(direct_res["files"]) == 8
    assert streamed == [2]  # the PAX shard; the others by their headers
    kept_keys = {index.keys[p] for p in np.flatnonzero(keep) if index.shard_ids[p] != 2}
    plans = [tar_plan(str(f)) for f in source.files]
    wanted = {r for p in plans if p for key, fields in p if key in kept_keys for f, r in fields.items()
              if not (reduce and f == "cls")}
    assert set(copied) == wanted and len(copied) == len(wanted)  # skipped examples' bytes never read


def test_tar_plan_reads_as_webdataset_and_refuses_what_it_cannot(tmp_path):
    import webdataset as wds

    root = _wds(tmp_path / "in")
    for f in sorted(root.iterdir())[:2]:
        plan = tar_plan(str(f))
        want = [{k: v for k, v in s.items() if not k.startswith("__")}
                for s in wds.WebDataset(str(f), shardshuffle=False)]
        data = f.read_bytes()
        assert [{k: data[r.offset:r.offset + r.size] for k, r in fields.items()} for _, fields in plan] == want
    assert tar_plan(str(root / "train-000002.tar")) is None  # PAX headers
    (tmp_path / "cut.tar").write_bytes((root / "train-000000.tar").read_bytes()[:3000])
    assert tar_plan(str(tmp_path / "cut.tar")) is None
    with tarfile.open(tmp_path / "dup.tar", "w", format=tarfile.USTAR_FORMAT) as tf:
        for name in ("a.jpg", "a.JPG"):
            _add(tf, name, b"x")
    assert tar_plan(str(tmp_path / "dup.tar")) is None  # webdataset raises on it: streamed, so it still does
    assert tar_plan(str(tmp_path / "missing.tar")) is None  # the streamed read reports it


def test_wds_damaged_shard_under_skip_is_streamed_and_equal(tmp_path, monkeypatch):
    source = open_source(f"wds:{_wds(tmp_path / 'in', damaged=True)}", "train")
    index = scan(source, "train", input_column="jpg", on_error="skip")
    assert {e["shard"] for e in index.shard_errors} == {"train-000003.tar"}
    keep = np.ones(len(index), bool)
    (direct_res, direct), (stream_res, stream) = _both(tmp_path, _plan("wds", "skip"), source, index, keep)
    assert direct == stream and direct_res == stream_res and direct_res["rows"] == len(index) < 32


def test_wds_source_changed_after_scan_is_an_error(tmp_path):
    from proxyds.errors import BadInput

    root = _wds(tmp_path / "in")
    source = open_source(f"wds:{root}", "train")
    index = scan(source, "train", input_column="jpg")
    (root / "train-000001.tar").unlink()
    source.files.pop(1)
    with pytest.raises(BadInput, match="source changed"):
        copy_split(_plan("wds"), source, index, None, tmp_path / "out", "train", ("a", "b", "c"))


def _parquet(root: Path) -> Path:
    """Three parquet files of 7, 7 and 6 rows in row groups of 3, with the sink test features; one
    image given by a local path only (the writer reads that file) and one missing image."""
    features = sink_features()
    rows = sink_rows(20)
    (root / "img.png").parent.mkdir(parents=True)
    (root / "img.png").write_bytes(encoded_image(99, "PNG"))
    rows[8]["image"] = {"bytes": None, "path": str(root / "img.png")}
    rows[12]["image"] = None
    for f, (lo, hi) in enumerate(((0, 7), (7, 14), (14, 20))):
        table = pa.Table.from_pylist([features.encode_example(r) for r in rows[lo:hi]], schema=features.arrow_schema)
        pq.write_table(table, root / f"train-{f:05d}.parquet", row_group_size=3)
    return root


@pytest.mark.parametrize("reduce", [False, True])
def test_parquet_direct_copy_equals_streamed(tmp_path, monkeypatch, reduce):
    source = open_source(f"hf:{_parquet(tmp_path / 'in')}/{{split}}-*.parquet", "train")
    index = scan(source, "train", input_column="image", on_error="skip")  # the missing image is skipped
    keep = np.random.default_rng(2).random(len(index)) < 0.6
    keep[[8, 12]] = True
    relabel = None
    if reduce:
        keep &= index.labels != 1
        relabel = Relabel(np.array([1, -1, 0]), ["two", "zero"])
    tables = []
    real = ParquetShardWriter.write_table
    monkeypatch.setattr(ParquetShardWriter, "write_table", lambda self, t: tables.append(len(t)) or real(self, t))
    (direct_res, direct), (stream_res, stream) = _both(tmp_path, _plan("parquet"), source, index, keep, relabel)
    assert direct == stream and direct_res == stream_res and direct_res["rows"] == int(keep.sum())
    # as Arrow: every kept row but those of the row group (rows 7-9) holding the path-only image
    assert sum(tables) == int(keep.sum() - keep[7:10].sum()) and keep[7:10].sum() < keep.sum()


def test_write_table_gives_the_bytes_of_row_by_row_writes(tmp_path):
    features, rows = sink_features(), sink_rows(13)
    table = pa.Table.from_pylist([features.encode_example(r) for r in rows], schema=features.arrow_schema)
    out = {}
    for name in ("rows", "tables"):
        with ParquetShardWriter(tmp_path / name, "train", features, rows_per_group=3, plan=[6, 0, 7]) as w:
            if name == "rows":
                for r in rows:
                    w.write(r)
            else:
                w.write(rows[0])  # rows from write() and tables mixed, in order
                for lo, hi in ((1, 2), (2, 9), (9, 13)):
                    w.write_table(table.slice(lo, hi - lo))
        out[name] = _files(tmp_path / name)
        assert w.counts == [6, 0, 7]
    assert out["rows"] == out["tables"]
    with ParquetShardWriter(tmp_path / "bad", "train", features) as w, pytest.raises(ValueError, match="schema"):
        w.write_table(table.drop_columns(["text"]))
