"""tools/make_synthetic_imagenet.py: the real layouts, readable by webdataset and datasets,
the same bytes in both formats, deterministic, and classes a linear model can learn."""

from __future__ import annotations

import importlib.util
import io
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

_PATH = Path(__file__).resolve().parents[1] / "tools" / "make_synthetic_imagenet.py"
_spec = importlib.util.spec_from_file_location("make_synthetic_imagenet", _PATH)
msi = importlib.util.module_from_spec(_spec)
sys.modules["make_synthetic_imagenet"] = msi  # multiprocessing pickles its functions by module name
_spec.loader.exec_module(msi)

SIZE = (40, 72)
TINY = dict(num_train=30, num_val=10, num_classes=4, size=SIZE, images_per_shard=12)


@pytest.fixture(scope="module")
def imagenet(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic") / "imagenet"
    return out, msi.make_synthetic_imagenet(out, **TINY)


def _read_tars(paths):
    import webdataset as wds

    return [(s["__key__"], s["cls"], s["jpg"]) for s in wds.WebDataset([str(p) for p in paths], shardshuffle=False)]


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_webdataset_layout(imagenet):
    out, written = imagenet
    assert [p.name for p in written["wds"]["train"]] == ["train-000000.tar", "train-000001.tar", "train-000002.tar"]
    assert [p.name for p in written["wds"]["val"]] == ["val-000000.tar"]
    assert sorted(p.name for p in (out / "wds").iterdir()) == sorted(p.name for p in sum(written["wds"].values(), []))
    train = _read_tars(written["wds"]["train"])
    assert len(train) == 30 and len({k for k, _, _ in train}) == 30
    labels = []
    for key, cls, jpg in train:
        assert re.fullmatch(r"n\d{8}_\d{6}", key), key
        label = int(cls.decode("ascii"))
        assert key.startswith(f"n{label:08d}_")
        labels.append(label)
        img = Image.open(io.BytesIO(jpg))
        assert img.format == "JPEG" and img.mode == "RGB"
        assert SIZE[0] <= img.width <= SIZE[1] and SIZE[0] <= img.height <= SIZE[1]
    counts = np.bincount(labels, minlength=4)
    assert counts.max() - counts.min() <= 1  # balanced classes
    assert len(_read_tars(written["wds"]["val"])) == 10


def test_hf_layout_and_same_bytes(imagenet):
    import datasets

    out, _ = imagenet
    ds = datasets.load_dataset(str(out / "hf"))
    assert set(ds) == {"train", "validation"} and ds["train"].num_rows == 30 and ds["validation"].num_rows == 10
    assert isinstance(ds["train"].features["image"], datasets.Image)
    assert ds["train"].features["label"].names == [f"n{c:08d}" for c in range(4)]
    for img in ds["validation"]["image"]:
        assert img.mode == "RGB" and SIZE[0] <= img.width <= SIZE[1] and SIZE[0] <= img.height <= SIZE[1]
    # the parquet rows hold the tars' JPEG bytes, in the same order, with the same labels
    for split, tar_split in (("train", "train"), ("validation", "val")):
        raw = ds[split].cast_column("image", datasets.Image(decode=False))
        tars = _read_tars(sorted((out / "wds").glob(f"{tar_split}-*.tar")))
        assert [r["image"]["bytes"] for r in raw] == [jpg for _, _, jpg in tars]
        assert raw["label"] == [int(cls) for _, cls, _ in tars]
        assert [r["image"]["path"] for r in raw] == [f"{k}.jpg" for k, _, _ in tars]


def test_deterministic(tmp_path, imagenet):
    out, _ = imagenet
    again = tmp_path / "again"
    msi.make_synthetic_imagenet(again, **TINY, workers=2)  # worker processes give the same bytes
    assert _files(again) == _files(out)
    other = tmp_path / "other"
    msi.make_synthetic_imagenet(other, **{**TINY, "num_train": 4, "num_val": 0}, seed=1, formats=("wds",))
    assert _read_tars([other / "wds" / "train-000000.tar"])[0][2] != _read_tars([out / "wds" / "train-000000.tar"])[0][2]


def test_classes_are_learnable_at_16px():
    num_classes, n, n_fit = 10, 300, 200
    labels = msi.split_labels(n, num_classes, "train", seed=0)
    images = msi.iter_images("train", labels, num_classes=num_classes, seed=0, size=(64, 112))
    x = np.stack([np.asarray(Image.open(io.BytesIO(b)).convert("RGB").resize((16, 16), Image.BILINEAR),
                             np.float32).ravel() / 255 for b in images])
    # nearest class centroid, fitted on the first 200 images, scored on the other 100
    centroids = np.stack([x[:n_fit][labels[:n_fit] == c].mean(0) for c in range(num_classes)])
    predicted = ((x[n_fit:, None, :] - centroids[None]) ** 2).sum(-1).argmin(1)
    accuracy = (predicted == labels[n_fit:]).mean()
    assert accuracy >= 0.5, accuracy  # chance is 0.1


@pytest.mark.parametrize("num_classes", [10, 100])
def test_cifar_layout(tmp_path, num_classes):
    import datasets

    msi.make_synthetic_cifar(tmp_path, num_train=24, num_test=8, num_classes=num_classes, rows_per_shard=10)
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == [
        "test-00000-of-00001.parquet", "train-00000-of-00003.parquet", "train-00001-of-00003.parquet",
        "train-00002-of-00003.parquet"]
    ds = datasets.load_dataset(str(tmp_path))
    assert set(ds) == {"train", "test"} and ds["train"].num_rows == 24 and ds["test"].num_rows == 8
    label_columns = ["label"] if num_classes == 10 else ["fine_label", "coarse_label"]
    assert list(ds["train"].features) == ["img", *label_columns]
    assert ds["train"].features[label_columns[0]].num_classes == num_classes
    row = ds["test"][0]
    assert row["img"].size == (32, 32) and row["img"].format == "PNG"
    if num_classes == 100:
        assert ds["train"].features["coarse_label"].num_classes == 20
        assert all(c == f // 5 for f, c in zip(ds["train"]["fine_label"], ds["train"]["coarse_label"]))


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="num_classes"):
        msi.make_synthetic_cifar(tmp_path, num_train=2, num_test=2, num_classes=7)
    with pytest.raises(ValueError, match="formats"):
        msi.make_synthetic_imagenet(tmp_path, num_train=2, num_val=2, num_classes=2, formats=("tfrecord",))
    with pytest.raises(ValueError, match="size"):
        msi.make_synthetic_imagenet(tmp_path, num_train=2, num_val=2, num_classes=2, size=(500, 300))


def test_cli_smoke(tmp_path):
    assert msi.main([str(tmp_path / "in"), "--train", "6", "--val", "2", "--classes", "3", "--size", "32,48",
                     "--formats", "wds"]) == 0
    assert sorted(p.name for p in (tmp_path / "in" / "wds").iterdir()) == ["train-000000.tar", "val-000000.tar"]
    assert msi.main([str(tmp_path / "c"), "--train", "4", "--val", "2", "--cifar100"]) == 0
    assert (tmp_path / "c" / "data" / "test-00000-of-00001.parquet").is_file()
