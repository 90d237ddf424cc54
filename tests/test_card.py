"""The dataset card as its real readers see it (``datasets.load_dataset``, ``huggingface_hub.DatasetCard``),
its text describing the build that ran, its figure, and the reference split's name kept from the input."""

from __future__ import annotations

import json
import re
import shutil

import datasets
import numpy as np
import PIL.Image
import pytest
from huggingface_hub import DatasetCard

from proxyds.config import BuildConfig
from proxyds.pipeline.build import build
from proxyds.pipeline.card import card_license, card_text, dataset_name, source_name
from proxyds.pipeline.write import reference_split_name
from proxyds.sinks.card_figure import write_class_figure
from proxyds.verifier.check import verify

from helpers import tiny_config, tree_digest


@pytest.fixture(scope="module")
def wds_proxy(parquet_proxy, tmp_path_factory):
    """A tiny wds proxy keeping 3 of 10 classes, built on a copy of the session's work dir (its probes)."""
    root = tmp_path_factory.mktemp("card-wds")
    shutil.copytree(parquet_proxy.workdir, root / "work")
    out = root / "wds"
    build(tiny_config(f"hf:{parquet_proxy.src}", out, format="wds", label_reduction="3"))
    return out


def _card(out):
    return DatasetCard.load(out / "README.md")


def test_wds_proxy_loads_with_its_class_names(wds_proxy, hf_offline):
    record = json.loads((wds_proxy / "proxy.json").read_text())
    kept = record["summary"]["label_reduction"]["kept_classes"]
    ds = datasets.load_dataset(str(wds_proxy))
    assert set(ds) == {"train", "test"}
    for split in ds:
        assert ds[split].features["cls"] == datasets.ClassLabel(names=kept)  # today: a bare int64
        assert ds[split].num_rows == record["splits"][split]["rows"]
        assert set(ds[split]["cls"]) <= set(range(len(kept)))
    streamed = datasets.load_dataset(str(wds_proxy), split="train", streaming=True)
    assert streamed.features["cls"].names == kept
    assert verify(wds_proxy).ok


def test_card_parses_and_holds_its_data_fields(parquet_proxy):
    out, record = parquet_proxy.out, json.loads((parquet_proxy.out / "proxy.json").read_text())
    data = _card(out).data
    assert data.license == "unknown"  # no --license, and the input has no card
    assert data.task_categories == ["other"] and data.size_categories == ["n<1K"]  # 48 + 120 rows
    assert "proxy" in data.pretty_name and "/" not in data.pretty_name
    assert data.configs == [{"config_name": "default", "data_files": [
        {"split": "train", "path": "data/train-*.parquet"}, {"split": "test", "path": "data/test-*.parquet"}]}]
    info = data.dataset_info
    features = datasets.Features._from_yaml_list(info["features"])
    assert features["label"] == datasets.ClassLabel(names=[str(i) for i in range(10)])
    assert [(s["name"], s["num_examples"]) for s in info["splits"]] == [("train", 48), ("test", 120)]
    data_files = {p: f for p, f in record["files"].items() if p.startswith("data/")}
    assert {s["name"]: s["num_bytes"] for s in info["splits"]} == {
        split: sum(data_files[f"data/{f}"]["bytes"] for f in record["splits"][split]["files"]) for split in ("train", "test")}
    assert info["download_checksums"] == {p: {"num_bytes": f["bytes"], "checksum": f["sha256"]}
                                          for p, f in sorted(data_files.items())}
    text = (out / "README.md").read_text()
    assert str(parquet_proxy.src) not in text and str(out) not in text and "/tmp" not in text  # no local path


def test_card_text_names_the_build_that_ran(parquet_proxy, wds_proxy):
    text = _card(parquet_proxy.out).text
    assert "**Selector `random`**" in text and "**Why `random`**: it is proxyds' default" in text
    assert "License: `unknown` (neither `--license` nor the input's dataset card gave one)." in text
    assert "case importance" not in text  # the paper's probe weighting did not run
    assert "exactly 48 = round(0.1 x 480 usable train examples) drawn from them" in text and "seed 0" in text
    assert "`--label-reduction off`): none, all 10 classes kept" in text
    assert "batch size x ratio^0.25" in text and "-> 10 epochs, batch 72" in text  # proxyds.recipe.RECOMMENDED
    assert "![Train examples kept per class" in text and "(classes.png)" in text
    record = json.loads((wds_proxy / "proxy.json").read_text())
    red = record["summary"]["label_reduction"]
    text = _card(wds_proxy).text
    assert f"kept 3 of 10 classes, ranked by {red['ranked_by']}; dropped 7: " in text
    assert all(f"`{name}`" in text for name in red["dropped_classes"]) and red["reason"] in text
    summary = record["summary"]
    pool = sum(n for name, n in zip(summary["class_names"], summary["classes"]["train"]) if name in red["kept_classes"])
    assert f"drawn from the {pool:,} examples of the kept classes" in text


def test_card_text_follows_the_selector_and_weights(parquet_proxy):
    record = json.loads((parquet_proxy.out / "proxy.json").read_text())
    config = tiny_config("mnist1d", parquet_proxy.out, selector="probe", weights=(1, 1, 9, 0.5), seed=7)
    text = card_text(config, record["summary"], record["splits"], "parquet", label_field="label", figure=None)
    assert "**Selector `probe`**" in text and "Case weights c1..c4 of this build: 1, 1, 9, 0.5." in text
    assert "seed 7" in text and "entropy" not in text.split("## Probes")[0] and "classes.png" not in text


def test_wds_card_shows_the_real_shard_pattern(wds_proxy):
    text = _card(wds_proxy).text
    files = json.loads((wds_proxy / "proxy.json").read_text())["splits"]["train"]["files"]
    assert len(files) == 8 and "..N}" not in text
    assert f'wds.WebDataset("data/train-{{000000..{len(files) - 1:06d}}}.tar"' in text
    assert 'wids.ShardListDataset("train.wids.json")' in text


def test_rerun_is_byte_identical_card_and_figure_included(parquet_proxy, wds_proxy):
    again = wds_proxy.parent / "again"  # the same work dir: the stages are reused, every file is written anew
    build(tiny_config(f"hf:{parquet_proxy.src}", again, format="wds", label_reduction="3"))
    first, second = tree_digest(wds_proxy), tree_digest(again)
    assert {p.replace(str(wds_proxy), ""): d for p, d in first.items()} == \
        {p.replace(str(again), ""): d for p, d in second.items()}
    png = PIL.Image.open(again / "classes.png")
    assert png.format == "PNG" and "Software" not in png.info  # no matplotlib version in the bytes


def test_validation_split_keeps_its_name_and_the_input_license(parquet_proxy, tmp_path, hf_offline):
    src = tmp_path / "src"
    shutil.copytree(parquet_proxy.src / "data", src / "data")
    for p in (src / "data").glob("test-*"):
        p.rename(p.with_name(p.name.replace("test-", "validation-")))
    (src / "README.md").write_text("---\nlicense: cc-by-4.0\n---\n\n# input\n")
    out = tmp_path / "proxy"
    shutil.copytree(parquet_proxy.workdir, tmp_path / "work")
    build(tiny_config(f"hf:{src}", out, reference_split="validation"))
    ds = datasets.load_dataset(str(out))
    assert set(ds) == {"train", "validation"} and ds["validation"].num_rows == 120
    assert {p.name.split("-")[0] for p in (out / "data").iterdir()} == {"train", "validation"}
    record = json.loads((out / "proxy.json").read_text())
    assert record["output"]["reference_split"] == "validation" and set(record["splits"]) == {"train", "validation"}
    data = _card(out).data
    assert data.license == "cc-by-4.0" and "License: `cc-by-4.0`." in _card(out).text
    assert [s["name"] for s in data.dataset_info["splits"]] == ["train", "validation"]
    assert "evaluate them on `validation`" in _card(out).text
    report = verify(out)
    assert report.ok, report.problems
    assert report.checked["validation_rows"] == 120


def test_license_option(parquet_proxy, tmp_path, capsys):
    from proxyds.cli import main

    with pytest.raises(ValueError, match=r"license must be a Hub license identifier.*'Apache 2.0'"):
        tiny_config("mnist1d", tmp_path / "o", license="Apache 2.0")
    assert BuildConfig(dataset="mnist1d", out=tmp_path / "o", ratio=0.1, license="apache-2.0").license == "apache-2.0"
    with pytest.raises(SystemExit):
        main(["build", "--help"])
    assert re.search(r"--license LICENSE\s+license written into the dataset card", capsys.readouterr().out)


@pytest.mark.parametrize("declared,license", [("license: mit", "mit"), ("license: [mit, cc-by-4.0]", ["mit", "cc-by-4.0"]),
                                              ("license: Apache 2.0", "unknown"), ("pretty_name: x", "unknown")])
def test_license_is_inherited_from_the_input_card(tmp_path, caplog, declared, license):
    from types import SimpleNamespace

    (tmp_path / "README.md").write_text(f"---\n{declared}\n---\n")
    plan = SimpleNamespace(config=SimpleNamespace(license=None), train=SimpleNamespace(location=str(tmp_path)))
    assert card_license(plan) == license
    assert ("declares no Hub license identifier" in caplog.text) == (declared == "license: Apache 2.0")
    assert card_license(SimpleNamespace(config=SimpleNamespace(license="other"), train=plan.train)) == "other"


@pytest.mark.parametrize("name,split", [("validation", "validation"), ("val", "val"), ("test", "test"),
                                        ("train", "test"), ("val-2", "test"), (None, "test")])
def test_reference_split_name(name, split):
    class Source:
        pass

    source = Source()
    source.split = name
    assert reference_split_name(source) == split


@pytest.mark.parametrize("dataset,name", [("mnist1d", "mnist1d"), ("hf:/data/imagenet", "imagenet"),
                                          ("hf:/data/cifar/{split}-*.parquet", "cifar"),
                                          ("wds:/mnt/shards/imagenet/{split}-{000000..000146}.tar", "imagenet"),
                                          ("wds:s3://bucket/in1k/", "in1k"), ("hf:./local", "local")])
def test_dataset_name_holds_no_path(dataset, name):
    assert dataset_name(dataset) == name
    assert source_name(dataset) == (name if dataset == name else f"{dataset.partition(':')[0]}:{name}")


def test_proxy_json_summary_names_no_local_path(parquet_proxy):
    """summary.dataset and summary.source name the input as the card does; config keeps the path a
    rebuild from proxy.json reads."""
    record = json.loads((parquet_proxy.out / "proxy.json").read_text())
    summary = json.dumps(record["summary"])
    assert str(parquet_proxy.src) not in summary and "/tmp" not in summary and str(parquet_proxy.out) not in summary
    assert record["summary"]["dataset"] == parquet_proxy.src.name
    assert record["summary"]["source"] == f"hf:{parquet_proxy.src.name}"
    assert record["config"]["dataset"] == f"hf:{parquet_proxy.src}"


def test_class_figure_is_deterministic_and_validated(tmp_path):
    names = [f"class {i}" for i in range(60)]
    total = np.arange(60) + 40
    kept = total // 10
    dropped = np.arange(60) % 3 == 0
    kept[dropped] = 0
    paths = [write_class_figure(tmp_path / f"{i}.png", names, kept, total, dropped=dropped, title="t") for i in (1, 2)]
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert PIL.Image.open(paths[0]).size[1] > PIL.Image.open(
        write_class_figure(tmp_path / "small.png", names[:5], kept[:5], total[:5])).size[1]
    with pytest.raises(ValueError, match="one entry per class"):
        write_class_figure(tmp_path / "x.png", names, kept[:3], total)
    with pytest.raises(ValueError, match="0 <= kept <= total"):
        write_class_figure(tmp_path / "x.png", names[:2], [5, 1], [4, 1])
    with pytest.raises(ValueError, match="ending in .png"):
        write_class_figure(tmp_path / "x.svg", names[:2], [1, 1], [4, 1])
