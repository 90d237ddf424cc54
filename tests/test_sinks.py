"""Sinks: write -> read round trips through the real readers, determinism, safety, atomicity."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile

import datasets
import numpy as np
import PIL.Image
import pyarrow.parquet as pq
import pytest
import yaml

from proxyds.sinks import (
    ParquetShardWriter,
    WdsShardWriter,
    atomic_output_dir,
    row_to_wds_fields,
    sha256_file,
    wds_features,
    wds_fields_to_row,
    write_card,
)

NAMES = ["zero", "one", "two"]


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No test may touch the network: datasets and huggingface_hub read these at import."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True, raising=False)
    datasets.disable_progress_bars()


def _image(i: int, fmt: str) -> bytes:
    rng = np.random.default_rng(i)
    pixels = rng.integers(0, 256, size=(5, 6, 3), dtype=np.uint8)
    buf = io.BytesIO()
    PIL.Image.fromarray(pixels).save(buf, format=fmt)
    return buf.getvalue()


def _features() -> datasets.Features:
    return datasets.Features(
        {
            "label": datasets.ClassLabel(names=NAMES),
            "x": datasets.List(datasets.Value("float32"), length=40),
            "text": datasets.Value("string"),
            "image": datasets.Image(),
        }
    )


def _rows(n: int, offset: int = 0, formats=("JPEG", "PNG")) -> list[dict]:
    rows = []
    for i in range(offset, offset + n):
        fmt = formats[i % len(formats)]
        ext = {"JPEG": "jpg", "PNG": "png"}[fmt]
        x = np.random.default_rng(100 + i).standard_normal(40).astype(np.float32)
        rows.append(
            {
                "label": i % 3,
                "x": x.tolist(),
                "text": f"example {i} ünïcode",
                "image": {"bytes": _image(i, fmt), "path": f"img{i}.{ext}"},
            }
        )
    return rows


def _write_parquet(out_dir, split, rows, **kw):
    with ParquetShardWriter(out_dir, split, _features(), **kw) as w:
        for row in rows:
            w.write(row)
    return w


def _write_wds(out_dir, split, rows, maxcount=3, image_ext=None):
    with WdsShardWriter(out_dir, split, maxcount=maxcount) as w:
        for i, row in enumerate(rows):
            w.write(f"k{i:04d}", row_to_wds_fields(row, _features(), "label", image_ext=image_ext))
    return w


def _decoded(data: bytes) -> np.ndarray:
    return np.asarray(PIL.Image.open(io.BytesIO(data)).convert("RGB"))


# ---------------------------------------------------------------- parquet


def test_parquet_round_trip_through_load_dataset(tmp_path):
    out = tmp_path / "out"
    train, test = _rows(8), _rows(2, offset=50)
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
        assert d.features["label"].names == NAMES
        assert d.features["x"] == datasets.List(datasets.Value("float32"), length=40)
        assert len(d) == len(rows)
        for got, want in zip(d, rows):
            assert got["label"] == want["label"]
            assert got["x"] == want["x"]
            assert got["text"] == want["text"]
            np.testing.assert_array_equal(np.asarray(got["image"].convert("RGB")), _decoded(want["image"]["bytes"]))
        raw = d.cast_column("image", datasets.Image(decode=False))
        assert [r["image"] for r in raw] == [r["image"] for r in rows]  # original bytes and path


def test_parquet_empty_split_is_one_valid_shard(tmp_path):
    w = _write_parquet(tmp_path, "test", [])
    assert [p.name for p in w.paths] == ["test-00000-of-00001.parquet"] and w.num_rows == 0
    table = pq.read_table(w.paths[0])
    assert table.num_rows == 0
    assert datasets.Features.from_arrow_schema(table.schema)["label"].names == NAMES


def test_parquet_is_byte_deterministic(tmp_path):
    rows = _rows(5)
    a = _write_parquet(tmp_path / "a", "train", rows, rows_per_shard=2, rows_per_group=1)
    b = _write_parquet(tmp_path / "b", "train", rows, rows_per_shard=2, rows_per_group=1)
    assert [sha256_file(p) for p in a.paths] == [sha256_file(p) for p in b.paths]


def test_parquet_keeps_given_image_bytes_and_embeds_local_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    png = _image(1, "PNG")
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
        with ParquetShardWriter(tmp_path, "train", _features(), rows_per_shard=1) as w:
            w.write(_rows(1)[0])
            row = dict(_rows(1)[0], extra=1)
            del row["text"]
            w.write(row)
    assert list(tmp_path.iterdir()) == []  # no shard of a failed split survives
    with pytest.raises(ValueError, match="'train-x'"):
        ParquetShardWriter(tmp_path, "train-x", _features())


# ---------------------------------------------------------------- webdataset


def test_wds_round_trip_through_webdataset_and_datasets(tmp_path):
    import webdataset as wds

    rows = _rows(7, formats=("JPEG",))
    w = _write_wds(tmp_path / "data", "train", rows, maxcount=3)
    assert [p.name for p in w.paths] == ["train-000000.tar", "train-000001.tar", "train-000002.tar"]
    assert w.counts == [3, 3, 1] and w.num_rows == 7
    expected = [row_to_wds_fields(r, _features(), "label") for r in rows]
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
    np.testing.assert_array_equal(np.asarray(ds[0]["jpg"].convert("RGB")), _decoded(rows[0]["image"]["bytes"]))


def test_wds_mixed_image_formats_need_one_field_name_for_datasets(tmp_path):
    rows = _rows(4)  # jpg, png, jpg, png
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
        np.testing.assert_array_equal(np.asarray(got["jpg"].convert("RGB")), _decoded(want["image"]["bytes"]))


def test_wds_output_dir_loads_by_card(tmp_path):
    out = tmp_path / "out"
    rows = [dict(r, image={"bytes": _image(i, "PNG"), "path": "a.png"}) for i, r in enumerate(_rows(4))]
    _write_wds(out / "data", "train", rows[:3])
    _write_wds(out / "data", "test", rows[3:])
    write_card(out, data_files={"train": ["data/train-*"], "test": ["data/test-*"]}, summary_md="")
    ds = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    assert {k: len(v) for k, v in ds.items()} == {"train": 3, "test": 1}
    assert ds["train"]["cls"] == [0, 1, 2] and ds["test"]["cls"] == [0]
    raw = ds["train"].cast_column("png", datasets.Image(decode=False))
    assert [r["png"]["bytes"] for r in raw] == [r["image"]["bytes"] for r in rows[:3]]


def test_wds_is_byte_deterministic_with_neutral_headers(tmp_path):
    rows = _rows(4)
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


def test_wds_input_written_as_parquet_loads_with_class_names(tmp_path):
    """A wds: example (raw tar fields) -> row + Features -> parquet -> load_dataset."""
    examples = [
        {
            "__key__": f"s{i}",
            "cls": str(i % 3).encode(),
            "jpg": _image(i, "JPEG"),
            "emb.npy": row_to_wds_fields({"label": 0, "e": [i, i + 1]}, datasets.Features(
                {"label": datasets.Value("int64"), "e": datasets.List(datasets.Value("int16"))}), "label")["e.npy"],
            "txt": f"caption {i}".encode(),
            "json": f'{{"score": {i / 4}}}'.encode(),
        }
        for i in range(4)
    ]
    features = wds_features(examples[0], NAMES)
    assert features == datasets.Features(
        {
            "label": datasets.ClassLabel(names=NAMES),
            "emb": datasets.List(datasets.Value("int16")),
            "image": datasets.Image(),
            "json": datasets.Json(),
            "txt": datasets.Value("string"),
        }
    )
    with ParquetShardWriter(tmp_path / "data", "train", features) as w:
        for ex in examples:
            w.write(wds_fields_to_row(ex))
    ds = datasets.load_dataset("parquet", data_files=[str(p) for p in w.paths], split="train", cache_dir=str(tmp_path / "c"))
    assert ds.features["label"].names == NAMES
    assert ds["label"] == [0, 1, 2, 0] and ds["emb"] == [[i, i + 1] for i in range(4)]
    assert ds["txt"] == [f"caption {i}" for i in range(4)] and ds["json"] == [{"score": i / 4} for i in range(4)]
    raw = ds.cast_column("image", datasets.Image(decode=False))
    assert [r["image"] for r in raw] == [{"bytes": ex["jpg"], "path": f"{ex['__key__']}.jpg"} for ex in examples]


# ---------------------------------------------------------------- atomic output


def test_atomic_output_dir_success_failure_exists_overwrite(tmp_path):
    out = tmp_path / "out"
    with atomic_output_dir(out) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".out.tmp-") and not out.exists()
        (tmp / "a.txt").write_text("new")
    assert (out / "a.txt").read_text() == "new"
    assert os.listdir(tmp_path) == ["out"]

    ran = []
    with pytest.raises(FileExistsError, match="--overwrite") as err:
        with atomic_output_dir(out):
            ran.append(True)
    assert not ran and str(out) in str(err.value)

    with pytest.raises(KeyError):
        with atomic_output_dir(out, overwrite=True) as tmp:
            (tmp / "b.txt").write_text("half")
            raise KeyError("boom")
    assert os.listdir(tmp_path) == ["out"] and os.listdir(out) == ["a.txt"]  # old output untouched

    with atomic_output_dir(out, overwrite=True) as tmp:
        (tmp / "b.txt").write_text("replaced")
    assert os.listdir(out) == ["b.txt"] and os.listdir(tmp_path) == ["out"]

    with pytest.raises(ValueError):
        with atomic_output_dir(tmp_path / "never"):
            raise ValueError("x")
    assert os.listdir(tmp_path) == ["out"]


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores directory permissions")
def test_atomic_output_dir_unwritable_parent_names_it(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    try:
        with pytest.raises(PermissionError, match=str(locked)):
            with atomic_output_dir(locked / "out"):
                pass
    finally:
        locked.chmod(0o755)


def test_atomic_output_dir_unusable_parent_is_named(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OSError, match=str(tmp_path / "file")):
        with atomic_output_dir(tmp_path / "file" / "out"):
            pass

    def deny(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(type(tmp_path), "mkdir", deny)
    with pytest.raises(PermissionError, match=f"into {tmp_path}") as err:
        with atomic_output_dir(tmp_path / "out"):
            pass
    assert err.value.filename == str(tmp_path)


def test_sha256_file_streams_large_files(tmp_path):
    data = np.random.default_rng(0).bytes((5 << 19) + 7)  # 2.5 MiB + 7: several blocks
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f") == hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- convert


def _label_row(col: str, feature, value):
    return datasets.Features({"label": datasets.ClassLabel(names=NAMES), col: feature}), {"label": 2, col: value}


@pytest.mark.parametrize(
    "col,feature,value,field,want_feature",
    [
        ("x", datasets.List(datasets.Value("float32")), [0.5, -1.25, 3.0], "x.npy", datasets.List(datasets.Value("float32"))),
        ("m", datasets.Array2D((2, 3), "int64"), [[1, 2, 3], [4, 5, 6]], "m.npy",
         datasets.List(datasets.List(datasets.Value("int64")))),
        ("u", datasets.List(datasets.Value("uint8"), length=3), [0, 7, 255], "u.npy", datasets.List(datasets.Value("uint8"))),
        ("caption", datasets.Value("string"), "a cat, 猫", "caption.txt", datasets.Value("string")),
        ("n", datasets.Value("int32"), 42, "n.json", datasets.Value("int64")),
        ("f", datasets.Value("float64"), 0.1, "f.json", datasets.Value("float64")),
        ("b", datasets.Value("bool"), True, "b.json", datasets.Value("bool")),
    ],
)  # fmt: skip
def test_convert_round_trip_per_type(col, feature, value, field, want_feature):
    features, row = _label_row(col, feature, value)
    fields = row_to_wds_fields(row, features, "label")
    assert set(fields) == {"cls", field} and fields["cls"] == b"2"
    assert wds_fields_to_row(fields) == row
    assert wds_features(fields, NAMES) == datasets.Features({"label": datasets.ClassLabel(names=NAMES), col: want_feature})
    if field.endswith(".npy"):
        assert np.load(io.BytesIO(fields[field]), allow_pickle=False).dtype == np.dtype(want_feature_dtype(want_feature))


def want_feature_dtype(feature) -> str:
    while not isinstance(feature, datasets.Value):
        feature = feature.feature
    return feature.dtype


@pytest.mark.parametrize(
    "fmt,path,field",
    [("PNG", "a.png", "png"), ("JPEG", "b.JPEG", "jpg"), ("JPEG", None, "jpg"), ("PNG", None, "png"),
     ("WEBP", None, "webp"), ("GIF", None, "gif"), ("BMP", None, "bmp"), ("TIFF", None, "tif"), ("PNG", "noext", "png")],
)  # fmt: skip
def test_convert_images_keep_original_bytes(tmp_path, fmt, path, field):
    data = _image(3, fmt)
    features, row = _label_row("image", datasets.Image(), {"bytes": data, "path": path})
    fields = row_to_wds_fields(row, features, "label")
    assert fields == {"cls": b"2", field: data}
    back = wds_fields_to_row({**fields, "__key__": "k9"})
    assert back == {"label": 2, "image": {"bytes": data, "path": f"k9.{field}"}}
    assert wds_features(fields, NAMES)["image"] == datasets.Image()
    # Only a local path: the file's bytes are read.
    (tmp_path / f"f.{field}").write_bytes(data)
    _, by_path = _label_row("image", datasets.Image(), {"bytes": None, "path": str(tmp_path / f"f.{field}")})
    assert row_to_wds_fields(by_path, features, "label")[field] == data


def test_convert_nones_two_images_and_json_objects():
    feats = datasets.Features(
        {"label": datasets.Value("int64"), "a": datasets.Image(), "b": datasets.Image(), "t": datasets.Value("string")}
    )
    png, jpg = _image(0, "PNG"), _image(1, "JPEG")
    fields = row_to_wds_fields({"label": 0, "a": {"bytes": png, "path": None}, "b": {"bytes": jpg, "path": "x.jpg"}, "t": None}, feats, "label")
    assert fields == {"cls": b"0", "a.png": png, "b.jpg": jpg}  # None left out; several images keep column names
    assert set(wds_fields_to_row(fields)) == {"label", "a", "b"}
    meta = {"cls": b"1", "json": b'{"w": 3, "tags": ["a"]}'}
    assert wds_fields_to_row(meta) == {"label": 1, "json": {"w": 3, "tags": ["a"]}}
    assert wds_features(meta, NAMES)["json"] == datasets.Json()


@pytest.mark.parametrize(
    "col,feature,value,match",
    [
        ("blob", datasets.Value("binary"), b"x", "'blob'.*binary"),
        ("when", datasets.Value("timestamp[s]"), None, "'when'.*timestamp"),
        ("nested", {"a": datasets.Value("int32")}, {"a": 1}, "'nested'"),
        ("strs", datasets.List(datasets.Value("string")), ["a"], "'strs'"),
        ("a.b", datasets.Value("string"), "x", "'a.b'"),
        ("a/b", datasets.Value("string"), "x", "'a/b'"),
        ("ragged", datasets.List(datasets.List(datasets.Value("int32"))), [[1], [2, 3]], "'ragged'"),
        ("image", datasets.Image(), PIL.Image.new("RGB", (2, 2)), "'image'.*decode=False"),
        ("image", datasets.Image(), {"bytes": b"????????", "path": None}, "'image'.*format"),
    ],
)
def test_convert_rejects_unsupported_with_the_column_name(col, feature, value, match):
    features, row = _label_row(col, feature, value)
    with pytest.raises(ValueError, match=match):
        row_to_wds_fields(row, features, "label")


def test_convert_rejects_bad_labels_and_unknown_fields():
    features, row = _label_row("t", datasets.Value("string"), "x")
    for bad in (None, "2", 1.5):
        with pytest.raises(ValueError, match="'label'"):
            row_to_wds_fields(dict(row, label=bad), features, "label")
    with pytest.raises(ValueError, match="'nope'"):
        row_to_wds_fields(row, features, "nope")
    with pytest.raises(ValueError, match="'x.pth'"):
        wds_fields_to_row({"cls": b"1", "x.pth": b""})
    with pytest.raises(ValueError, match="'cls' is missing"):
        wds_fields_to_row({"jpg": b""})
    with pytest.raises(ValueError, match="'jpg'.*'png'"):
        wds_fields_to_row({"cls": b"1", "jpg": b"", "png": b""})


# ---------------------------------------------------------------- card


def test_card_is_deterministic_and_validated(tmp_path):
    kw = dict(data_files={"train": ["data/train-*"], "test": ["data/test-*", "extra/test-*"]}, summary_md="# Proxy\n\n10%")
    p = write_card(tmp_path / "a", **kw)
    q = write_card(tmp_path / "b", **kw)
    assert p.name == "README.md" and p.read_bytes() == q.read_bytes()
    text = p.read_text()
    assert text.startswith("---\n") and text.endswith("# Proxy\n\n10%\n")
    meta = yaml.safe_load(text.split("---\n")[1])
    assert meta["configs"] == [
        {
            "config_name": "default",
            "data_files": [
                {"split": "train", "path": "data/train-*"},
                {"split": "test", "path": ["data/test-*", "extra/test-*"]},
            ],
        }
    ]
    assert meta["pretty_name"] == "proxyds proxy" and meta["tags"] == ["proxyds", "data-proxy"]
    for bad in ("../data/*", "/abs/*", "https://x/*"):
        with pytest.raises(ValueError, match="pattern"):
            write_card(tmp_path, data_files={"train": [bad]}, summary_md="")
    with pytest.raises(ValueError, match="list of patterns"):
        write_card(tmp_path, data_files={"train": "data/train-*"}, summary_md="")
