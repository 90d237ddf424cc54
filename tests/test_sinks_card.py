"""The dataset card: deterministic README.md whose configs load the output's splits."""

from __future__ import annotations

import pytest
import yaml

from proxyds.sinks import write_card


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


def test_card_metadata_round_trips_through_huggingface_hub_and_datasets(tmp_path):
    import datasets
    from huggingface_hub import DatasetCard

    features = datasets.Features({"label": datasets.ClassLabel(names=["cat", "dog"]), "x": datasets.Value("float32")})
    kw = dict(data_files={"train": ["data/train-*"], "val": ["data/val-*"]}, summary_md="# Proxy",
              features=features, split_sizes={"train": (900, 1234), "val": (200, 99)}, license=["mit", "cc-by-4.0"],
              task_categories=["image-classification"])
    path = write_card(tmp_path / "a", **kw)
    assert path.read_bytes() == write_card(tmp_path / "b", **kw).read_bytes()
    data = DatasetCard.load(path).data
    assert data.license == ["mit", "cc-by-4.0"] and data.task_categories == ["image-classification"]
    assert data.size_categories == ["1K<n<10K"]  # 900 + 200 examples
    info = datasets.info.DatasetInfosDict.from_dataset_card_data(data)["default"]
    assert info.features == features and info.download_size == 1333
    assert {s: (v.num_examples, v.num_bytes) for s, v in info.splits.items()} == {"train": (900, 1234), "val": (200, 99)}


@pytest.mark.parametrize("kw,message", [
    (dict(split_sizes={"train": (1, 1)}), "exactly the splits"),
    (dict(split_sizes={"train": (1, 1), "test": (-1, 0)}), "integers >= 0"),
    (dict(license="Apache 2.0"), "Hub license identifier"),
    (dict(task_categories="image-classification"), "list of Hub task names"),
    (dict(features={"label": "int64"}), "datasets.Features"),
])
def test_card_metadata_is_validated(tmp_path, kw, message):
    with pytest.raises(ValueError, match=message):
        write_card(tmp_path, data_files={"train": ["data/train-*"], "test": ["data/test-*"]}, summary_md="", **kw)


def test_size_category():
    from proxyds.sinks.card import size_category

    assert [size_category(n) for n in (0, 999, 1000, 99_999, 1_281_167, 10**10, 10**12)] == [
        "n<1K", "n<1K", "1K<n<10K", "10K<n<100K", "1M<n<10M", "10B<n<100B", "n>1T"]
    with pytest.raises(ValueError, match="integer >= 0"):
        size_category(-1)
