"""Label reduction and k probes, end to end on a synthetic 100-class dataset."""

from __future__ import annotations

import json

import datasets
import numpy as np
import pyarrow.parquet as pq
import pytest

from proxyds.pipeline.build import build
from proxyds.selection.sampling import class_scores

from helpers import tiny_config


@pytest.fixture(scope="module")
def hundred_classes(tmp_path_factory):
    """2,000 train (20 per class) and 500 reference (5 per class) sequences, 100 classes."""
    from datasets import ClassLabel, Features, List, Value

    from proxyds.sinks import ParquetShardWriter

    root = tmp_path_factory.mktemp("c100")
    rng = np.random.default_rng(0)
    templates = rng.normal(size=(100, 40)).astype(np.float32)
    features = Features({"x": List(Value("float32"), length=40),
                         "label": ClassLabel(names=[f"class{i:03d}" for i in range(100)])})
    for split, per_class in (("train", 20), ("test", 5)):
        labels = np.tile(np.arange(100), per_class)
        with ParquetShardWriter(root / "data", split, features, rows_per_shard=1000) as w:
            for y in labels:
                noise = rng.normal(scale=1.0 + (y % 7) * 0.3, size=40)  # classes differ in difficulty
                w.write({"x": (templates[y] + noise).astype(np.float32).tolist(), "label": int(y)})
    return root


def test_auto_label_reduction_keeps_top_classes_and_exact_size(hundred_classes, tmp_path):
    out = tmp_path / "proxy"
    result = build(tiny_config(f"hf:{hundred_classes}", out, label_reduction="auto", probe_epochs=2))
    red = result.summary["label_reduction"]
    assert red["applied"] and red["reason"].startswith("auto: 200 examples over 100 classes")
    assert len(red["kept_classes"]) == 20 and len(red["dropped_classes"]) == 80  # 2 x ratio = 400 = 20 classes

    manifest = pq.read_table(out / "manifest.parquet").to_pandas()
    assert len(manifest) == 2000 and manifest["selected"].sum() == 200  # exactly round(0.1 * 2000)
    scores = class_scores(manifest["label"].to_numpy(), manifest["importance"].to_numpy(), 100)
    top = sorted(np.argsort(-scores, kind="stable")[:20].tolist())
    assert red["kept_classes"] == [f"class{c:03d}" for c in top]
    assert set(manifest.loc[manifest["selected"], "label"]) <= set(top)
    kept = manifest["label"].isin(top)
    assert (manifest.loc[~kept, "proxy_label"] == -1).all()
    assert sorted(manifest.loc[kept, "proxy_label"].unique()) == list(range(20))

    ds = datasets.load_dataset(str(out))
    assert ds["train"].features["label"].names == red["kept_classes"]
    assert ds["train"].num_rows == 200 and ds["test"].num_rows == 20 * 5
    assert ds["train"]["label"] == manifest.loc[manifest["selected"], "proxy_label"].tolist()
    record = json.loads((out / "proxy.json").read_text())
    assert record["summary"]["label_reduction"]["dropped_classes"] == red["dropped_classes"]


def test_fixed_class_count_and_off(hundred_classes, tmp_path):
    r = build(tiny_config(f"hf:{hundred_classes}", tmp_path / "n", label_reduction="25"))
    assert len(r.summary["label_reduction"]["kept_classes"]) == 25
    r = build(tiny_config(f"hf:{hundred_classes}", tmp_path / "off", label_reduction="off"))
    assert not r.summary["label_reduction"]["applied"]
    assert datasets.load_dataset(str(tmp_path / "off"))["test"].num_rows == 500


def test_three_probes_build(tiny_mnist1d, tmp_path):
    r = build(tiny_config(f"hf:{tiny_mnist1d}", tmp_path / "k3", probes=3))
    assert list(r.summary["probes"]) == ["lower", "probe1", "upper"]
    assert sorted(r.summary["probe_ranking"]) == ["lower", "probe1", "upper"]
    assert sum(r.summary["cases"]["train"]) == 480 and r.summary["num_selected"] == 48
