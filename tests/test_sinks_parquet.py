"""Parquet sink: write -> load_dataset round trips, empty splits, byte determinism, rejected rows."""

from __future__ import annotations

import datasets
import numpy as np
import pyarrow.parquet as pq
import pytest

from helpers import CLASS_NAMES, decoded_image, encoded_image, sink_features, sink_rows
from proxyds.sinks import ParquetShardWriter, sha256_file, write_card

pytestmark = pytest.mark.usefixtures("hf_offline")


def _write_parquet(out_dir, split, rows, **kw):
    with ParquetShardWriter(out_dir, split, sink_features(), **kw) as w:
        for row in rows:
            w.write(row)
    return w


def test_parquet_round_trip_through_load_dataset(tmp_path):
    out = tmp_path / "out"
    train, test = sink_rows(8), sink_rows(2, offset=50)
    w = _write_parquet(out / "data", "train", train, rows_per_shard=3, rows_per_group=2)
    wt = _write_parquet(out / "data", "test", test)
    write_card(out, data_files={"train": ["data/train-*"], "test": ["data/test-*"]}, summary_md="# proxy\n")
    (out / "proxy.json").write_text("{}")  # siblings written by other modules must not become splits
    pq.write_table(pq.read_table(w.paths[0]).select(["label"]), out / "manifest.parquet")

    assert [p.name for p in w.paths] == [f"train-0000{i}-of-00003.parquet" for i in range(3)]
    assert [p.name for p in wt.paths] == ["test-00000-of-00001.parquet"]
    assert w.num_rows == 8 and wt.num_rows == 2
    assert sorted(p.name for p in (out / "data").iterdir()) == sorted(p.name for p in w.paths + wt.paths)
    # 3 + 3 + 2 rows, row groups of at most 2 rows that never cross a shard.
    assert [pq.ParquetFile(p).metadata.num_row_groups for p in w.paths] == [2, 2, 1]

    ds = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    assert set(ds) == {"train", "test"}
    for split, rows in (("train", train), ("test", test)):
        d = ds[split]
        assert d.features["label"].names == CLASS_NAMES
        assert d.features["x"] == datasets.List(datasets.Value("float32"), length=40)
        assert len(d) == len(rows)
        for got, want in zip(d, rows):
            assert got["label"] == want["label"]
            assert got["x"] == want["x"]
            assert got["text"] == want["text"]
            np.testing.assert_array_equal(np.asarray(got["image"].convert("RGB")), decoded_image(want["image"]["bytes"]))
        raw = d.cast_column("image", datasets.Image(decode=False))
        assert [r["image"] for r in raw] == [r["image"] for r in rows]  # original bytes and path


def test_parquet_empty_split_is_one_valid_shard(tmp_path):
    w = _write_parquet(tmp_path, "test", [])
    assert [p.name for p in w.paths] == ["test-00000-of-00001.parquet"] and w.num_rows == 0
    table = pq.read_table(w.paths[0])
    assert table.num_rows == 0
    assert datasets.Features.from_arrow_schema(table.schema)["label"].names == CLASS_NAMES


def test_parquet_is_byte_deterministic(tmp_path):
    rows = sink_rows(5)
    a = _write_parquet(tmp_path / "a", "train", rows, rows_per_shard=2, rows_per_group=1)
    b = _write_parquet(tmp_path / "b", "train", rows, rows_per_shard=2, rows_per_group=1)
    assert [sha256_file(p) for p in a.paths] == [sha256_file(p) for p in b.paths]


def test_parquet_keeps_given_image_bytes_and_embeds_local_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    png = encoded_image(1, "PNG")
    (tmp_path / "img0.png").write_bytes(b"not the original bytes")  # a same-named file in cwd
    (tmp_path / "only_path.png").write_bytes(png)
    feats = datasets.Features({"image": datasets.Image()})
    with ParquetShardWriter(tmp_path / "data", "train", feats) as w:
        w.write({"image": {"bytes": png, "path": "img0.png"}})
        w.write({"image": {"bytes": None, "path": str(tmp_path / "only_path.png")}})
    stored = pq.read_table(w.paths[0]).column("image").to_pylist()
    assert stored == [{"bytes": png, "path": "img0.png"}, {"bytes": png, "path": "only_path.png"}]


def test_parquet_rejects_rows_that_do_not_match_and_cleans_up(tmp_path):
    with pytest.raises(ValueError, match="missing.*'text'.*unexpected.*'extra'"):
        with ParquetShardWriter(tmp_path, "train", sink_features(), rows_per_shard=1) as w:
            w.write(sink_rows(1)[0])
            row = dict(sink_rows(1)[0], extra=1)
            del row["text"]
            w.write(row)
    assert list(tmp_path.iterdir()) == []  # no shard of a failed split survives
    with pytest.raises(ValueError, match="'train-x'"):
        ParquetShardWriter(tmp_path, "train-x", sink_features())
