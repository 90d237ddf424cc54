"""Image presets end to end on tiny synthetic data in the real layouts (issue: ImageNet scale)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest

from proxyds.pipeline.build import build
from proxyds.cli import main
from proxyds.config import BuildConfig
from proxyds.verifier.check import verify

ROOT = Path(__file__).resolve().parents[1]


def _tool():
    if "make_synthetic_imagenet" in sys.modules:  # one module object: its workers pickle functions by name
        return sys.modules["make_synthetic_imagenet"]
    spec = importlib.util.spec_from_file_location("make_synthetic_imagenet", ROOT / "tools" / "make_synthetic_imagenet.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def imagenet_like(tmp_path_factory):
    out = tmp_path_factory.mktemp("imnet")
    _tool().make_synthetic_imagenet(out, num_train=240, num_val=60, num_classes=4, size=(40, 72),
                                    images_per_shard=50)
    return out


@pytest.fixture(autouse=True)
def _tiny_space_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent))


def image_config(dataset, data, out, **kw):
    fields = dict(dataset=dataset, data=str(data), out=out, ratio=0.25, space="tiny_spaces:tiny2d", probe_epochs=1,
                  batch_size=32, pca_components=8, rows_per_shard=20, workdir=out.parent / "work", device="cpu",
                  workers=0, label_reduction="off", allow_weak_probes=True)  # one-epoch probes: at chance
    fields.update(kw)
    return BuildConfig(**fields)


def _jpeg_bytes_of_wds(shards) -> dict[str, bytes]:
    import webdataset as wds

    return {s["__key__"]: s["jpg"] for s in wds.WebDataset([str(p) for p in shards], shardshuffle=False)}


def test_imagenet_wds_keeps_original_jpeg_bytes(imagenet_like, tmp_path):
    out = tmp_path / "proxy"
    result = build(image_config("imagenet", imagenet_like / "wds", out))
    assert result.summary["source"].startswith("wds:") and result.summary["num_selected"] == 60

    original = _jpeg_bytes_of_wds(sorted((imagenet_like / "wds").glob("train-*.tar")))
    written = _jpeg_bytes_of_wds(sorted((out / "data").glob("train-*.tar")))
    manifest = pq.read_table(out / "manifest.parquet").to_pandas()
    assert sorted(written) == sorted(manifest.loc[manifest["selected"], "key"])
    assert all(written[k] == original[k] for k in written)  # no re-encode

    index = json.loads((out / "train.wids.json").read_text())
    assert len(index["shardlist"]) % 8 == 0
    assert sum(e["nsamples"] for e in index["shardlist"]) == 60
    for entry in index["shardlist"]:
        assert len(_jpeg_bytes_of_wds([out / entry["url"]])) == entry["nsamples"]

    ds = datasets.load_dataset(str(out))
    assert set(ds) == {"train", "val"} and ds["val"].num_rows == 60  # the input's split name is kept
    assert ds["train"].num_rows == 60 and ds["train"].features["cls"].names == result.summary["class_names"]
    assert ds["train"][0]["jpg"].size[0] >= 40  # decoded PIL image
    assert verify(out).ok, verify(out).problems


def test_imagenet_hf_to_parquet_keeps_bytes(imagenet_like, tmp_path):
    out = tmp_path / "proxy"
    build(image_config("imagenet", imagenet_like / "hf", out, workers=2))  # decoding in 2 worker processes
    ds = datasets.load_dataset(str(out))
    assert set(ds) == {"train", "validation"} and ds["validation"].num_rows == 60  # the input's split name
    assert ds["train"][0]["image"].mode == "RGB"
    raw = ds["train"].cast_column("image", datasets.Image(decode=False))
    src = datasets.load_dataset(str(imagenet_like / "hf"), split="train").cast_column("image", datasets.Image(decode=False))
    manifest = pq.read_table(out / "manifest.parquet").to_pandas()
    chosen = manifest.loc[manifest["selected"], "index"].tolist()
    assert [r["bytes"] for r in raw["image"]] == [src[i]["image"]["bytes"] for i in chosen]


def test_workers_do_not_change_the_selection(imagenet_like, tmp_path):
    a = build(image_config("imagenet", imagenet_like / "wds", tmp_path / "a", workers=0))
    probes = tmp_path / "work" / "probes"
    given = tuple(f"{role}={next(probes.glob(f'tiny2d-{c}-*.pt'))}" for role, c in (("lower", "w4"), ("upper", "w8")))
    b = build(image_config("imagenet", imagenet_like / "wds", tmp_path / "b", workers=2, workdir=tmp_path / "w2",
                           probe_checkpoints=given))  # a fresh work dir: everything is scored again, in 2 workers
    assert a.summary["probes"] == b.summary["probes"]
    assert (tmp_path / "a" / "manifest.parquet").read_bytes() == (tmp_path / "b" / "manifest.parquet").read_bytes()


def test_cifar10_layout(tmp_path):
    _tool().make_synthetic_cifar(tmp_path / "c10", num_train=200, num_test=50, num_classes=10)
    out = tmp_path / "proxy"
    result = build(image_config("cifar10", tmp_path / "c10", out, ratio=0.2))
    assert result.summary["num_selected"] == 40
    ds = datasets.load_dataset(str(out))
    assert ds["train"].features["img"].__class__.__name__ == "Image" and ds["train"].num_rows == 40
    assert verify(out).ok, verify(out).problems
    raw = ds["train"].cast_column("img", datasets.Image(decode=False))
    src = datasets.load_dataset(str(tmp_path / "c10"), split="train").cast_column("img", datasets.Image(decode=False))
    manifest = pq.read_table(out / "manifest.parquet").to_pandas()
    assert [r["bytes"] for r in raw["img"]] == [src[i]["img"]["bytes"] for i in manifest.loc[manifest["selected"], "index"]]


def test_cifar100_turns_label_reduction_on(tmp_path, capsys):
    _tool().make_synthetic_cifar(tmp_path / "c100", num_train=1000, num_test=300, num_classes=100)
    code = main(["build", "cifar100", "--data", str(tmp_path / "c100"), "--ratio", "0.1", "--out", str(tmp_path / "p"),
                 "--space", "tiny_spaces:tiny2d", "--probe-epochs", "1", "--pca-components", "8", "--workers", "0",
                 "--workdir", str(tmp_path / "w"), "--device", "cpu", "--allow-weak-probes"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "label reduction: auto: 100 examples over 100 classes" in printed and "kept 20 classes" in printed
    ds = datasets.load_dataset(str(tmp_path / "p"))
    assert ds["train"].num_rows == 100 and len(ds["train"].features["fine_label"].names) == 20
    assert verify(tmp_path / "p").ok, verify(tmp_path / "p").problems


def test_missing_data_says_how_to_supply_it(tmp_path, capsys):
    assert main(["build", "imagenet", "--ratio", "0.1", "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "imagenet is not downloaded by proxyds; pass --data PATH" in err and "KEY.jpg" in err


def _with_non_image(imagenet_like, tmp_path) -> tuple:
    """A copy of the ImageNet-like wds input whose first train .jpg holds HTML; (dir, its key)."""
    import io
    import tarfile

    src = tmp_path / "wds"
    src.mkdir()
    for p in sorted((imagenet_like / "wds").glob("*.tar")):
        (src / p.name).write_bytes(p.read_bytes())
    shard = src / "train-000000.tar"
    with tarfile.open(shard) as tf:
        members = [(m, tf.extractfile(m).read()) for m in tf.getmembers()]
    victim = next(m.name for m, _ in members if m.name.endswith(".jpg"))
    with tarfile.open(shard, "w", format=tarfile.PAX_FORMAT) as tf:
        for m, data in members:
            data = b"<html>not a picture</html>" if m.name == victim else data
            m.size = len(data)
            tf.addfile(m, io.BytesIO(data))
    return src, victim.split(".")[0]


def test_non_image_bytes_in_an_image_field(imagenet_like, tmp_path):
    """A .jpg field holding something else: the error names the example; skip counts it."""
    from proxyds.pipeline.scan import BadInput

    src, key = _with_non_image(imagenet_like, tmp_path)
    with pytest.raises(BadInput, match=rf"train example '{key}' \(shard train-000000.tar\): undecodable input"):
        build(image_config("imagenet", src, tmp_path / "out"))
    result = build(image_config("imagenet", src, tmp_path / "skip", on_error="skip"))
    assert list(result.summary["skipped"]["train"].values()) == [1]
    manifest = pq.read_table(tmp_path / "skip" / "manifest.parquet").to_pandas()
    assert len(manifest) == 240 and manifest.set_index("key").loc[key, "status"].startswith("skipped: undecodable")


def test_given_probes_check_inputs_in_the_scoring_pass(imagenet_like, tmp_path, monkeypatch):
    """Every probe given: the scan decodes nothing (the scoring passes decode every input anyway),
    and the same bad example is named, or skipped and accounted for, by the scoring pass."""
    import torch

    from proxyds.pipeline import scan
    from proxyds.pipeline.scan import BadInput
    from proxyds.spaces import resolve_space

    src, key = _with_non_image(imagenet_like, tmp_path)
    space, probes = resolve_space("tiny_spaces:tiny2d"), []
    for role, name in (("lower", "w4"), ("upper", "w8")):
        torch.manual_seed(0)
        torch.save(space.build(name, 4).state_dict(), tmp_path / f"{role}.pt")
        probes.append((role, str(tmp_path / f"{role}.pt")))

    decoded, real = [], scan.check_input
    monkeypatch.setattr(scan, "check_input", lambda *a, **k: decoded.append(1) or real(*a, **k))
    given = {"probe_checkpoints": tuple(probes)}
    with pytest.raises(BadInput, match=rf"train example '{key}' \(shard train-000000.tar\): undecodable input"):
        build(image_config("imagenet", src, tmp_path / "out", **given))
    result = build(image_config("imagenet", src, tmp_path / "skip", on_error="skip", **given))
    assert list(result.summary["skipped"]["train"].values()) == [1]
    manifest = pq.read_table(tmp_path / "skip" / "manifest.parquet").to_pandas().set_index("key")
    assert len(manifest) == 240 and manifest.loc[key, "status"].startswith("skipped: undecodable")
    assert not manifest.loc[key, "selected"]
    assert verify(tmp_path / "skip").ok
    assert not decoded  # the scans read keys and labels only


def test_nan_features_are_named(imagenet_like, tmp_path):
    """A probe whose features come out NaN (a broken checkpoint) stops the build by name."""
    import torch

    from proxyds.pipeline.scan import BadInput
    from proxyds.spaces import resolve_space

    space = resolve_space("tiny_spaces:tiny2d")
    paths = []
    for role, name in (("lower", "w4"), ("upper", "w8")):
        state = space.build(name, 4).state_dict()
        if role == "upper":
            state["body.0.weight"] = torch.full_like(state["body.0.weight"], float("nan"))
        torch.save(state, tmp_path / f"{role}.pt")
        paths.append(f"{role}={tmp_path / f'{role}.pt'}")
    with pytest.raises(BadInput, match=r"reference example .*: the probe's features are NaN or infinite"):
        build(image_config("imagenet", imagenet_like / "wds", tmp_path / "out", probe_checkpoints=tuple(paths)))
