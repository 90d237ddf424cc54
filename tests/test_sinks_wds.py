"""WebDataset sink: round trips through webdataset and datasets, determinism, safe keys, cleanup."""

from __future__ import annotations

import tarfile

import datasets
import numpy as np
import pytest

from helpers import decoded_image, encoded_image, sink_features, sink_rows
from proxyds.sinks import (
    WdsShardWriter,
    row_to_wds_fields,
    sha256_file,
    wds_fields_to_row,
    write_card,
)

pytestmark = pytest.mark.usefixtures("hf_offline")


def _write_wds(out_dir, split, rows, maxcount=3, image_ext=None):
    with WdsShardWriter(out_dir, split, maxcount=maxcount) as w:
        for i, row in enumerate(rows):
            w.write(f"k{i:04d}", row_to_wds_fields(row, sink_features(), "label", image_ext=image_ext))
    return w


def test_wds_round_trip_through_webdataset_and_datasets(tmp_path):
    import webdataset as wds

    rows = sink_rows(7, formats=("JPEG",))
    w = _write_wds(tmp_path / "data", "train", rows, maxcount=3)
    assert [p.name for p in w.paths] == ["train-000000.tar", "train-000001.tar", "train-000002.tar"]
    assert w.counts == [3, 3, 1] and w.num_rows == 7
    expected = [row_to_wds_fields(r, sink_features(), "label") for r in rows]
    assert all(set(f) == {"cls", "x.npy", "text.txt", "jpg"} for f in expected)

    got = list(wds.WebDataset([str(p) for p in w.paths], shardshuffle=False))
    assert [s["__key__"] for s in got] == [f"k{i:04d}" for i in range(7)]
    assert [{k: v for k, v in s.items() if not k.startswith("__")} for s in got] == expected
    back = [wds_fields_to_row(s) for s in got]  # and on to rows again
    assert [{**b, "image": b["image"]["bytes"]} for b in back] == [{**r, "image": r["image"]["bytes"]} for r in rows]

    ds = datasets.load_dataset(
        "webdataset", data_files={"train": [str(p) for p in w.paths]}, split="train", cache_dir=str(tmp_path / "c")
    )
    assert ds["cls"] == [r["label"] for r in rows]
    assert ds.features["x.npy"] == datasets.List(datasets.Value("float32"))
    assert ds["x.npy"] == [r["x"] for r in rows]
    assert ds["text.txt"] == [r["text"] for r in rows]
    raw = ds.cast_column("jpg", datasets.Image(decode=False))
    assert [r["jpg"]["bytes"] for r in raw] == [r["image"]["bytes"] for r in rows]
    np.testing.assert_array_equal(np.asarray(ds[0]["jpg"].convert("RGB")), decoded_image(rows[0]["image"]["bytes"]))


def test_wds_mixed_image_formats_need_one_field_name_for_datasets(tmp_path):
    rows = sink_rows(4)  # jpg, png, jpg, png
    mixed = _write_wds(tmp_path / "mixed", "train", rows)
    files = {"train": [str(p) for p in mixed.paths]}
    with pytest.raises(ValueError, match="same prefix or the same types"):
        datasets.load_dataset("webdataset", data_files=files, split="train", cache_dir=str(tmp_path / "c1"))
    uniform = _write_wds(tmp_path / "uniform", "train", rows, image_ext="jpg")
    files = {"train": [str(p) for p in uniform.paths]}
    ds = datasets.load_dataset("webdataset", data_files=files, split="train", cache_dir=str(tmp_path / "c2"))
    raw = ds.cast_column("jpg", datasets.Image(decode=False))
    assert [r["jpg"]["bytes"] for r in raw] == [r["image"]["bytes"] for r in rows]  # bytes unchanged
    for got, want in zip(ds, rows):  # PIL reads the format from the bytes, not the name
        np.testing.assert_array_equal(np.asarray(got["jpg"].convert("RGB")), decoded_image(want["image"]["bytes"]))


def test_wds_output_dir_loads_by_card(tmp_path):
    out = tmp_path / "out"
    rows = [dict(r, image={"bytes": encoded_image(i, "PNG"), "path": "a.png"}) for i, r in enumerate(sink_rows(4))]
    _write_wds(out / "data", "train", rows[:3])
    _write_wds(out / "data", "test", rows[3:])
    write_card(out, data_files={"train": ["data/train-*"], "test": ["data/test-*"]}, summary_md="")
    ds = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    assert {k: len(v) for k, v in ds.items()} == {"train": 3, "test": 1}
    assert ds["train"]["cls"] == [0, 1, 2] and ds["test"]["cls"] == [0]
    raw = ds["train"].cast_column("png", datasets.Image(decode=False))
    assert [r["png"]["bytes"] for r in raw] == [r["image"]["bytes"] for r in rows[:3]]


def test_wds_is_byte_deterministic_with_neutral_headers(tmp_path):
    rows = sink_rows(4)
    a = _write_wds(tmp_path / "a", "train", rows, maxcount=2)
    b = _write_wds(tmp_path / "b", "train", rows, maxcount=2)
    assert [sha256_file(p) for p in a.paths] == [sha256_file(p) for p in b.paths]
    with tarfile.open(a.paths[0]) as tf:
        members = tf.getmembers()
    assert [m.name for m in members][:4] == ["k0000.cls", "k0000.jpg", "k0000.text.txt", "k0000.x.npy"]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode, m.isreg()) for m in members} == {
        (0, 0, 0, "", "", 0o444, True)
    }


@pytest.mark.parametrize("key", ["a.b", "a/b", "..", "", "../x", "a\x00b", "/abs"])
def test_wds_rejects_bad_keys(tmp_path, key):
    with WdsShardWriter(tmp_path, "train") as w:
        with pytest.raises(ValueError, match="key") as err:
            w.write(key, {"cls": b"1"})
        assert repr(key) in str(err.value)
        w.write("fine", {"cls": b"1"})
        for field in ["", "a/b", ".x", "x."]:
            with pytest.raises(ValueError, match="field name"):
                w.write("other", {field: b"1"})
        with pytest.raises(ValueError, match="no fields"):
            w.write("empty", {})
        with pytest.raises(ValueError, match="twice"):
            w.write("fine", {"cls": b"2"})
    with tarfile.open(w.paths[0]) as tf:
        names = tf.getnames()
    assert names == ["fine.cls"]
    assert all("/" not in n and ".." not in n for n in names)


def test_wds_long_keys_empty_split_and_cleanup(tmp_path):
    import webdataset as wds

    key = "k" * 150  # beyond ustar's 100-byte name field: a PAX header carries it
    with WdsShardWriter(tmp_path / "long", "train") as w:
        w.write(key, {"cls": b"1", "_meta": b"kept"})
    (sample,) = list(wds.WebDataset([str(w.paths[0])], shardshuffle=False))
    assert sample["__key__"] == key and sample["_meta"] == b"kept"

    with WdsShardWriter(tmp_path / "empty", "test") as e:
        pass
    assert [p.name for p in e.paths] == ["test-000000.tar"] and e.counts == [0]
    with tarfile.open(e.paths[0]) as tf:
        assert tf.getmembers() == []

    with pytest.raises(RuntimeError):
        with WdsShardWriter(tmp_path / "fail", "train", maxcount=1) as f:
            f.write("a", {"cls": b"0"})
            f.write("b", {"cls": b"1"})
            raise RuntimeError("boom")
    assert list((tmp_path / "fail").iterdir()) == []
