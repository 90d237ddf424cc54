"""End-to-end builds on a tiny MNIST-1D: outputs load unchanged and account for every example."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import datasets
import numpy as np
import pyarrow.parquet as pq
import pytest

from proxyds.pipeline.build import build
from proxyds.sinks import sha256_file

from helpers import tiny_config


@pytest.fixture(scope="module")
def parquet_build(parquet_proxy):
    """The session's default tiny parquet proxy (conftest): read it, copy before changing it."""
    return parquet_proxy.src, parquet_proxy.out, parquet_proxy.result


def test_parquet_output_loads_and_accounts_for_every_example(parquet_build):
    src, out, result = parquet_build
    ds = datasets.load_dataset(str(out))
    assert set(ds) == {"train", "test"}
    assert ds["train"].num_rows == 48 and ds["test"].num_rows == 120  # round(0.1 * 480)
    assert ds["train"].features["label"].names == [str(i) for i in range(10)]

    manifest = pq.read_table(out / "manifest.parquet").to_pydict()
    assert len(manifest["key"]) == 480 and len(set(manifest["key"])) == 480
    assert sum(manifest["selected"]) == 48
    assert abs(sum(manifest["keep_prob"]) - 1.0) < 1e-9
    assert set(manifest["case"]) <= {1, 2, 3, 4}
    assert sorted(set(manifest["shard"])) == [f"train-0000{i}-of-00003.parquet" for i in range(3)]

    # The proxy's rows are exactly the selected original rows, values unchanged, in order.
    original = datasets.load_dataset(str(src), split="train")
    chosen = [i for i, s in zip(manifest["index"], manifest["selected"]) if s]
    assert ds["train"]["x"] == original.select(chosen)["x"]
    assert ds["train"]["label"] == original.select(chosen)["label"]
    assert ds["test"]["x"] == datasets.load_dataset(str(src), split="test")["x"]

    record = json.loads((out / "proxy.json").read_text())
    assert record["format_version"] == 1 and record["config"]["ratio"] == 0.1
    for rel, entry in record["files"].items():
        assert sha256_file(out / rel) == entry["sha256"]
    assert "proxy.json" not in record["files"]
    assert result.summary["num_selected"] == 48
    assert sum(result.summary["cases"]["train"]) == 480
    assert not [p for p in out.parent.iterdir() if ".tmp-" in p.name]  # no temp dir left behind


def test_same_seed_gives_identical_manifest_and_other_seed_differs(parquet_build, tmp_path):
    src, out, _ = parquet_build
    again = tmp_path / "again"
    build(tiny_config(f"hf:{src}", again, workdir=tmp_path / "fresh-work"))  # probes retrained from scratch
    assert (again / "manifest.parquet").read_bytes() == (out / "manifest.parquet").read_bytes()
    other = tmp_path / "other"
    work = shutil.copytree(out.parent / "work", tmp_path / "work")  # the shared build's probes, not changed
    build(tiny_config(f"hf:{src}", other, seed=1, workdir=work))
    a = pq.read_table(out / "manifest.parquet")["selected"].to_numpy()
    b = pq.read_table(other / "manifest.parquet")["selected"].to_numpy()
    assert a.sum() == b.sum() == 48 and (a != b).any()


def test_wds_output_reads_back_with_webdataset_and_datasets(parquet_build, tmp_path):
    import webdataset as wds

    src, _, _ = parquet_build
    out = tmp_path / "wds"
    build(tiny_config(f"hf:{src}", out, format="wds"))
    manifest = pq.read_table(out / "manifest.parquet").to_pydict()
    expected = {k: lab for k, lab, s in zip(manifest["key"], manifest["label"], manifest["selected"]) if s}
    shards = sorted(str(p) for p in (out / "data").glob("train-*.tar"))
    assert len(shards) == 8  # a multiple of 8 shards with equal counts: 48 rows -> 8 x 6
    index = json.loads((out / "train.wids.json").read_text())  # wids resolves urls against the index's folder
    assert [(e["url"], e["nsamples"]) for e in index["shardlist"]] == [(f"data/{Path(s).name}", 6) for s in shards]
    got = {s["__key__"]: int(s["cls"]) for s in wds.WebDataset(shards, shardshuffle=False, empty_check=False)}
    assert got == expected
    arrays = {s["__key__"]: s["x.npy"] for s in wds.WebDataset(shards, shardshuffle=False).decode()}
    original = datasets.load_dataset(str(src), split="train")
    for key, x in arrays.items():
        assert np.array_equal(x, np.asarray(original[int(key.split("-")[1])]["x"], dtype=np.float32))
    hf = datasets.load_dataset("webdataset", data_files={"train": shards}, split="train")
    assert sorted(zip(hf["__key__"], hf["cls"])) == sorted(expected.items())
    assert datasets.load_dataset(str(out))["train"].num_rows == 48


def test_wds_input_to_parquet_and_wds(parquet_build, tmp_path):
    """A WebDataset input (x.npy + cls) builds to both formats; labels and arrays survive."""
    from proxyds.sinks import WdsShardWriter, row_to_wds_fields

    src, _, _ = parquet_build
    wdir = tmp_path / "wds-in"
    for split in ("train", "test"):
        ds = datasets.load_dataset(str(src), split=split)
        with WdsShardWriter(wdir, split, maxcount=200) as w:
            for i, row in enumerate(ds):
                w.write(f"{split}-{i:08d}", row_to_wds_fields(row, ds.features, "label"))
    for fmt in ("parquet", "wds"):
        out = tmp_path / f"out-{fmt}"
        res = build(tiny_config(f"wds:{wdir}", out, input_column="x.npy", format=fmt))
        assert res.summary["num_selected"] == 48
        loaded = datasets.load_dataset(str(out))
        assert loaded["train"].num_rows == 48 and loaded["test"].num_rows == 120
    manifest = pq.read_table(tmp_path / "out-parquet" / "manifest.parquet").to_pydict()
    labels = [lab for lab, s in zip(manifest["label"], manifest["selected"]) if s]
    assert datasets.load_dataset(str(tmp_path / "out-parquet"))["train"]["label"] == labels


def test_existing_output_is_refused_without_overwrite(parquet_build):
    src, out, _ = parquet_build
    with pytest.raises(FileExistsError, match="--overwrite"):
        build(tiny_config(f"hf:{src}", out))


def _write_split(root: Path, split: str, rows: list[dict]):
    from datasets import ClassLabel, Features, List, Value

    from proxyds.sinks import ParquetShardWriter

    features = Features({"x": List(Value("float32"), length=40), "label": ClassLabel(names=[str(i) for i in range(10)])})
    with ParquetShardWriter(root / "data", split, features) as w:
        for row in rows:
            w.write(row)


@pytest.mark.parametrize("case,match", [
    ("empty", "empty"),
    ("unseen_class", "not in the reference split"),
])
def test_bad_input_is_named(tmp_path, case, match):
    rows = [{"x": [0.0] * 40, "label": i % 10} for i in range(40)]
    if case == "empty":
        _write_split(tmp_path / "src", "train", [])
        _write_split(tmp_path / "src", "test", rows)
    else:
        _write_split(tmp_path / "src", "train", rows)
        _write_split(tmp_path / "src", "test", [r for r in rows if r["label"] != 3])
    with pytest.raises(ValueError, match=match):
        build(tiny_config(f"hf:{tmp_path / 'src'}", tmp_path / "out"))


def test_missing_label_column_lists_columns(parquet_build, tmp_path):
    src, _, _ = parquet_build
    with pytest.raises(ValueError, match=r"label column 'target'.*columns: x, label"):
        build(tiny_config(f"hf:{src}", tmp_path / "out", label_column="target"))


def test_unknown_preset_lists_known_ones(tmp_path):
    with pytest.raises(ValueError, match="known presets: .*mnist1d"):
        build(tiny_config("imagenet-nope", tmp_path / "out"))
