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
    # a selector with a class signal (the default, random, has none: its classes are drawn by seed)
    result = build(tiny_config(f"hf:{hundred_classes}", out, label_reduction="auto", probe_epochs=2,
                               selector="entropy"))
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


# --- the auto rule on arrays (issue 15: never a degenerate proxy) ------------------------------
from pathlib import Path  # noqa: E402
from types import SimpleNamespace  # noqa: E402

from proxyds.config import BuildConfig  # noqa: E402
from proxyds.selection.labels import auto_num_classes, reduce_labels  # noqa: E402
from proxyds.selection.sampling import proxy_size, rank_classes  # noqa: E402


def _cfg(ratio, **kw):
    return BuildConfig(dataset="unused", out=Path("unused"), ratio=ratio, **kw)


def _reduce(num_classes, per_class, ratio, importance=None, *, seed=0, **kw):
    labels = np.repeat(np.arange(num_classes), per_class)
    if importance is None:  # a distinct score per class, in shuffled order: ranking by index would be wrong
        importance = np.random.default_rng(1).permutation(num_classes)[labels] + 1.0
    names = [f"c{i}" for i in range(num_classes)]
    k = proxy_size(ratio, len(labels))
    return reduce_labels(_cfg(ratio, **kw), labels, importance, names, k, seed=seed), labels, importance


def test_ten_classes_at_five_percent_keeps_all_ten():
    red, _, _ = _reduce(10, 1000, 0.05)  # 500 examples: 50 per class < 100, the old rule kept ONE class
    assert not red["applied"] and len(red["kept_classes"]) == 10 and red["dropped_classes"] == []
    assert red["reason"].startswith("not needed: 10 classes <= min_classes 20")
    assert red["label_map"].tolist() == list(range(10))


def test_hundred_classes_keep_as_many_as_min_per_class_allows():
    red, labels, imp = _reduce(100, 500, 0.05)  # CIFAR-100 shape: k = 2,500 -> 2,500 // 100 = 25 classes
    assert red["applied"] and len(red["kept_classes"]) == 25 and len(red["dropped_classes"]) == 75
    top = np.argsort(-class_scores(labels, imp, 100))[:25]  # distinct scores: ranked by score, not index
    assert red["kept_classes"] == [f"c{c}" for c in sorted(top)]
    assert not red["flat_scores"] and red["ranked_by"] == "class scores"
    assert "DROPPED 75" in red["reason"] and red["reason"].startswith("auto: 2,500 examples over 100 classes")
    red, _, _ = _reduce(100, 500, 0.01)  # k = 500 -> 5 classes by min_per_class, raised to the floor of 20
    assert len(red["kept_classes"]) == 20
    assert auto_num_classes(12_811, 1000, min_per_class=100) == 128  # ImageNet at 1%


def test_never_fewer_than_two_classes():
    for ratio in (0.001, 0.01, 0.05):
        red, _, _ = _reduce(10, 1000, ratio, min_classes=2)  # floor lowered to 2 on purpose
        assert len(red["kept_classes"]) >= 2
    red, _, _ = _reduce(10, 1000, 0.01, min_classes=2)  # k = 100 -> 100 // 100 = 1 -> 2
    assert len(red["kept_classes"]) == 2
    assert auto_num_classes(1, 50, min_per_class=100, min_classes=2) == 2
    unchecked = SimpleNamespace(**{**_cfg(0.1).to_dict(), "label_reduction": "1"})  # bypasses BuildConfig
    with pytest.raises(ValueError, match="at least 2 classes .*'1'"):
        reduce_labels(unchecked, np.repeat(np.arange(10), 10), np.ones(100), [str(i) for i in range(10)], 10)
    with pytest.raises(ValueError, match=r"label_reduction .* >= 2 \(got '1'\)"):
        _cfg(0.1, label_reduction="1")
    with pytest.raises(ValueError, match=r"min_classes must be an integer >= 2 \(got 1\)"):
        _cfg(0.1, min_classes=1)


def test_explicit_count_above_present_classes_names_both():
    with pytest.raises(ValueError, match="label_reduction 12 asks for more classes .* \\(10\\)"):
        _reduce(10, 100, 0.1, label_reduction="12")


def test_flat_scores_draw_the_kept_classes_with_the_seed():
    ones = np.full(100 * 50, 0.1)  # the random selector: every class ties (up to rounding of the means)
    kept = {}
    for seed in range(6):
        red, _, _ = _reduce(100, 50, 0.05, ones, seed=seed)
        assert red["flat_scores"] and red["ranked_by"] == "seeded draw" and f"seed {seed}" in red["reason"]
        kept[seed] = red["kept_classes"]
        assert len(kept[seed]) == 20
    assert _reduce(100, 50, 0.05, ones, seed=3)[0]["kept_classes"] == kept[3]  # same seed, same classes
    assert len({tuple(v) for v in kept.values()}) > 1  # different seeds, different classes
    first = [f"c{i}" for i in range(20)]
    assert all(v != first for v in kept.values())  # never the first classes by index


def test_ties_are_broken_by_the_seed_not_the_index():
    labels = np.repeat(np.arange(30), 10)
    imp = np.where(labels == 29, 2.0, 1.0)  # not flat: class 29 is best, the other 29 tie
    picks = set()
    for seed in range(8):
        order, flat = rank_classes(labels, imp, 30, seed=seed)
        assert not flat and order[0] == 29 and sorted(order.tolist()) == list(range(30))
        picks.add(int(order[1]))
    assert len(picks) > 1


def test_auto_reduction_is_deterministic_and_seed_defaults_to_config():
    labels = np.repeat(np.arange(50), 20)
    imp = np.ones(1000)
    names = [str(i) for i in range(50)]
    a = reduce_labels(_cfg(0.05, seed=4), labels, imp, names, 50)
    b = reduce_labels(_cfg(0.05), labels, imp, names, 50, seed=4)
    assert a["kept_classes"] == b["kept_classes"] and np.array_equal(a["label_map"], b["label_map"])


# --- acceptance: a default build of a 10-class, 10,000-example set at 5% ------------------------

def _ten_class_set(root, n_train=10_000, n_test=1_000):
    """Learnable 1-D sequences: a class template plus noise, 10 balanced classes."""
    import pyarrow as pa
    from datasets import ClassLabel, Features, List, Value

    features = Features({"x": List(Value("float32"), length=40), "label": ClassLabel(names=[f"d{i}" for i in range(10)])})
    rng = np.random.default_rng(0)
    templates = rng.normal(size=(10, 40)).astype(np.float32)
    (root / "data").mkdir(parents=True)
    for split, n in (("train", n_train), ("test", n_test)):
        y = np.arange(n) % 10
        x = templates[y] + rng.normal(scale=0.8, size=(n, 40)).astype(np.float32)
        table = pa.table({"x": x.tolist(), "label": y.tolist()}, schema=features.arrow_schema)
        pq.write_table(table, root / "data" / f"{split}-00000-of-00001.parquet")
    return root


def test_default_build_of_ten_classes_at_five_percent_keeps_every_class(tmp_path):
    src = _ten_class_set(tmp_path / "src")
    out = tmp_path / "proxy"
    config = BuildConfig(dataset=f"hf:{src}", out=out, ratio=0.05, input_column="x", space="resnet1d",
                         probe_epochs=1, batch_size=256, pca_components=16, workdir=tmp_path / "work", device="cpu")
    assert config.label_reduction == "auto" and config.min_per_class == 100  # the defaults
    red = build(config).summary["label_reduction"]
    assert not red["applied"] and red["dropped_classes"] == []
    assert red["kept_classes"] == [f"d{i}" for i in range(10)]
    ds = datasets.load_dataset(str(out))
    assert ds["train"].num_rows == 500 and ds["train"].features["label"].names == red["kept_classes"]
    assert len(set(ds["train"]["label"])) >= 2 and ds["test"].num_rows == 1000
