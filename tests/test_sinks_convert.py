"""Row <-> WebDataset field conversion: every supported type round trips; what is unsupported is named."""

from __future__ import annotations

import io

import datasets
import numpy as np
import PIL.Image
import pytest

from helpers import CLASS_NAMES, encoded_image
from proxyds.sinks import ParquetShardWriter, row_to_wds_fields, wds_features, wds_fields_to_row

pytestmark = pytest.mark.usefixtures("hf_offline")


def test_wds_input_written_as_parquet_loads_with_class_names(tmp_path):
    """A wds: example (raw tar fields) -> row + Features -> parquet -> load_dataset."""
    examples = [
        {
            "__key__": f"s{i}",
            "cls": str(i % 3).encode(),
            "jpg": encoded_image(i, "JPEG"),
            "emb.npy": row_to_wds_fields({"label": 0, "e": [i, i + 1]}, datasets.Features(
                {"label": datasets.Value("int64"), "e": datasets.List(datasets.Value("int16"))}), "label")["e.npy"],
            "txt": f"caption {i}".encode(),
            "json": f'{{"score": {i / 4}}}'.encode(),
        }
        for i in range(4)
    ]
    features = wds_features(examples[0], CLASS_NAMES)
    assert features == datasets.Features(
        {
            "label": datasets.ClassLabel(names=CLASS_NAMES),
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
    assert ds.features["label"].names == CLASS_NAMES
    assert ds["label"] == [0, 1, 2, 0] and ds["emb"] == [[i, i + 1] for i in range(4)]
    assert ds["txt"] == [f"caption {i}" for i in range(4)] and ds["json"] == [{"score": i / 4} for i in range(4)]
    raw = ds.cast_column("image", datasets.Image(decode=False))
    assert [r["image"] for r in raw] == [{"bytes": ex["jpg"], "path": f"{ex['__key__']}.jpg"} for ex in examples]


def _label_row(col: str, feature, value):
    return datasets.Features({"label": datasets.ClassLabel(names=CLASS_NAMES), col: feature}), {"label": 2, col: value}


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
    assert wds_features(fields, CLASS_NAMES) == datasets.Features({"label": datasets.ClassLabel(names=CLASS_NAMES), col: want_feature})
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
    data = encoded_image(3, fmt)
    features, row = _label_row("image", datasets.Image(), {"bytes": data, "path": path})
    fields = row_to_wds_fields(row, features, "label")
    assert fields == {"cls": b"2", field: data}
    back = wds_fields_to_row({**fields, "__key__": "k9"})
    assert back == {"label": 2, "image": {"bytes": data, "path": f"k9.{field}"}}
    assert wds_features(fields, CLASS_NAMES)["image"] == datasets.Image()
    # Only a local path: the file's bytes are read.
    (tmp_path / f"f.{field}").write_bytes(data)
    _, by_path = _label_row("image", datasets.Image(), {"bytes": None, "path": str(tmp_path / f"f.{field}")})
    assert row_to_wds_fields(by_path, features, "label")[field] == data


def test_convert_nones_two_images_and_json_objects():
    feats = datasets.Features(
        {"label": datasets.Value("int64"), "a": datasets.Image(), "b": datasets.Image(), "t": datasets.Value("string")}
    )
    png, jpg = encoded_image(0, "PNG"), encoded_image(1, "JPEG")
    fields = row_to_wds_fields({"label": 0, "a": {"bytes": png, "path": None}, "b": {"bytes": jpg, "path": "x.jpg"}, "t": None}, feats, "label")
    assert fields == {"cls": b"0", "a.png": png, "b.jpg": jpg}  # None left out; several images keep column names
    assert set(wds_fields_to_row(fields)) == {"label", "a", "b"}
    meta = {"cls": b"1", "json": b'{"w": 3, "tags": ["a"]}'}
    assert wds_fields_to_row(meta) == {"label": 1, "json": {"w": 3, "tags": ["a"]}}
    assert wds_features(meta, CLASS_NAMES)["json"] == datasets.Json()


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
