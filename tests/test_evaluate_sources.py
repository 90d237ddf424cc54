"""`proxyds evaluate DATASET --space SPACE` on hf: and wds: sources, images and sequences: smoke runs of
seconds on tiny generated data; the A/B cut of the held-out split; proxies made (and probes shared)
by the build's stages; the run cache keyed by the trainer's version."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch

from helpers import write_wds_copy
from proxyds.cli import main
from proxyds.harness.evaluate import EvaluateConfig
from proxyds.harness.sources import split_reference
from proxyds.pipeline.scan import OK, SplitIndex
from proxyds.selection.sampling import proxy_size

pytestmark = pytest.mark.usefixtures("hf_offline")

# one-epoch probes on a hundred examples may sit at chance: these smoke runs test the plumbing
FAST = ["--tiny", "--proxy-seeds", "1", "--epochs", "1", "--build", "probe_epochs=1", "--build",
        "allow_weak_probes=true", "--build", "workers=0", "--build", "pca_components=4", "--build", "batch_size=32"]


def _bars(n: int, seed: int) -> list[dict]:
    """8x8 grey PNGs of 3 classes: a bright bar on rows 2c, 2c+1 of class c, over noise."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        c = i % 3
        px = rng.integers(0, 90, size=(8, 8)).astype(np.uint8)
        px[2 * c:2 * c + 2] = 230
        buf = io.BytesIO()
        Image.fromarray(px).save(buf, format="PNG")
        rows.append({"image": {"bytes": buf.getvalue(), "path": f"{i}.png"}, "label": c})
    return rows


@pytest.fixture(scope="module")
def tiny_images(tmp_path_factory):
    """A HF image dataset: 90 train and 60 test 8x8 grey PNGs, 3 classes, in shards of 40."""
    return _image_dataset(tmp_path_factory.mktemp("bars"), (("train", 90, 0), ("test", 60, 1)))


def _image_dataset(root, splits):
    import datasets

    from proxyds.sinks import ParquetShardWriter

    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b", "c"])})
    for split, n, seed in splits:
        with ParquetShardWriter(root / "data", split, features, rows_per_shard=40) as w:
            for row in _bars(n, seed):
                w.write(row)
    return root


def _image_wds(dst):
    """The same images as ``tiny_images`` as WebDataset shards: KEY.png + KEY.cls."""
    from proxyds.sinks import WdsShardWriter

    for split, n, seed in (("train", 90, 0), ("test", 60, 1)):
        with WdsShardWriter(dst, split, maxcount=40) as w:
            for i, row in enumerate(_bars(n, seed)):
                w.write(f"{split}-{i:05d}", {"png": row["image"]["bytes"], "cls": str(row["label"]).encode()})
    return dst


def _evaluate(tmp_path, source, *args):
    out = tmp_path / "report"
    assert main(["evaluate", source, "--out", str(out), "--cache", str(tmp_path / "cache"), *FAST, *args]) == 0
    return json.loads((out / "results.json").read_text()), (out / "report.md").read_text()


@pytest.mark.parametrize("scheme", ["hf", "wds"])
@pytest.mark.parametrize("kind", ["image", "sequence"])
def test_evaluate_a_source(kind, scheme, tiny_images, tiny_mnist1d, tmp_path, capsys):
    src, space, column = (tiny_images, "digits-cnn", "image") if kind == "image" else (tiny_mnist1d, "cnn1d", "x")
    if scheme == "wds" and kind == "image":
        src, column = _image_wds(tmp_path / "wds"), "png"
    elif scheme == "wds":
        src, column = write_wds_copy(src, tmp_path / "wds", per_shard=40), "x.npy"
    r, report = _evaluate(tmp_path, f"{scheme}:{src}", "--space", space, "--input-column", column)
    assert "noise ceiling" in capsys.readouterr().out
    assert set(r["proxies"]) == {"entropy", "random"} and len(r["configs"]) == 3
    assert {"macs", "params", "synflow", "naswot"} == set(r["baselines"])  # training-free, on streamed inputs
    for entry in r["proxies"].values():
        acc = np.array(entry["0.25"]["accuracy"])
        assert acc.shape == (1, 3) and ((0 <= acc) & (acc <= 1)).all()
    sizes, held_out = r["data"]["sizes"], 60 if kind == "image" else 120
    assert sizes["reference_A"] + sizes["evaluation_B"] == held_out and abs(sizes["evaluation_B"] - held_out / 2) <= 5
    assert "every reported accuracy" in r["data"]["evaluation_B"] and "disjoint from A" in r["data"]["evaluation_B"]
    assert "reference split A" in report and "evaluation split B" in report
    counts = r["selector_notes"]["random"]["class_counts"]["0.25/0"]
    assert sum(counts) == proxy_size(0.25, sizes["train"])  # the build's exact-size draw


def _index(labels, status=None) -> SplitIndex:
    n = len(labels)
    return SplitIndex([f"k{i}" for i in range(n)], np.asarray(labels, np.int64), np.zeros(n, np.int32), ["s0"],
                      list(status or [OK] * n))


def test_reference_and_evaluation_splits_are_disjoint_and_stratified():
    labels = np.repeat([0, 1, 2], [20, 40, 61])
    status = [OK] * len(labels)
    status[5] = "skipped: undecodable input"
    held = _index(labels, status)
    a, b = split_reference(held, 0.25, seed=3)
    a_pos, b_pos = set(np.flatnonzero(a.ok)), set(np.flatnonzero(b))
    assert not a_pos & b_pos and a_pos | b_pos == set(np.flatnonzero(held.ok)) and 5 not in a_pos | b_pos
    np.testing.assert_array_equal(np.bincount(labels[b], minlength=3), [5, 10, 15])  # round(0.25 * usable per class)
    assert all(a.status[p] == "skipped: evaluation split B" for p in b_pos)
    assert held.ok.sum() == len(labels) - 1  # the held-out index itself is untouched
    np.testing.assert_array_equal(b, split_reference(held, 0.25, seed=3)[1])
    assert not np.array_equal(b, split_reference(held, 0.25, seed=4)[1])


def test_probes_are_shared_and_a_rerun_trains_nothing(tiny_mnist1d, tmp_path, monkeypatch):
    """Probes train once per seed for every selector x ratio (the build's stage cache), and a rerun
    reads every probe, scoring pass and run back instead of training."""
    from proxyds.harness import streamed
    from proxyds.pipeline import score

    calls = []
    real = score.train_probe
    monkeypatch.setattr(score, "train_probe", lambda *a, **k: calls.append(k["desc"]) or real(*a, **k))
    cfg = EvaluateConfig.from_source(f"hf:{tiny_mnist1d}", tmp_path / "r", tiny=True, space="cnn1d",
                                     selectors=("entropy", "random"), ratios=(0.25,),
                                     proxy_seeds=1, epochs=1, cache=tmp_path / "cache",
                                     build={"input_column": "x", "probe_epochs": 1, "allow_weak_probes": True,
                                            "pca_components": 4})
    first = streamed.evaluate_source(cfg)
    assert len(calls) == 2  # lower and upper, once, for both selectors
    assert first["timing"]["trained_runs"] == 3 * 2 + 2 * 3
    again = streamed.evaluate_source(cfg)
    assert len(calls) == 2 and again["timing"]["trained_runs"] == 0
    for sel, by_ratio in first["proxies"].items():
        for ratio, entry in by_ratio.items():
            assert again["proxies"][sel][ratio]["accuracy"] == entry["accuracy"]


def test_a_new_trainer_version_retrains_cached_runs(tmp_path, monkeypatch):
    from proxyds.harness import data as hdata
    from proxyds.harness import evaluate as ev
    from proxyds.harness.data import TrainRecipe
    from proxyds.spaces import get_space

    g = torch.Generator().manual_seed(0)
    d = ev.EvalData(torch.randn(20, 1, 40, generator=g), torch.arange(20) % 2, torch.randn(8, 1, 40, generator=g),
                    torch.arange(8) % 2, torch.randn(8, 1, 40, generator=g), torch.arange(8) % 2, 2)
    harness = ev.Harness(d, get_space("cnn1d"), TrainRecipe(epochs=1, batch_size=16), tmp_path)
    job = [ev._Job(get_space("cnn1d").configs[1].name, 0, None)]
    harness.run_many(job)
    harness.run_many(job)
    assert harness.trained_runs == 1
    monkeypatch.setattr(hdata, "TRAINER_VERSION", hdata.TRAINER_VERSION + 1)
    harness.run_many(job)
    assert harness.trained_runs == 2


def test_bad_source_options_are_named(tiny_mnist1d, tmp_path, capsys):
    out = ["--out", str(tmp_path / "o")]
    assert main(["evaluate", "mnist1d-cnn", "--data", "x", *out]) == 1
    assert "--data is for a dataset" in capsys.readouterr().err
    assert main(["evaluate", f"hf:{tiny_mnist1d}", *out]) == 1
    assert "--space is required" in capsys.readouterr().err
    assert main(["evaluate", f"hf:{tiny_mnist1d}", "--space", "cnn1d", "--build", "ratio=0.5", *out]) == 1
    assert "build setting 'ratio' is not one the evaluation passes on" in capsys.readouterr().err
    assert main(["evaluate", "digits", "--evaluation-fraction", "1.5", *out]) == 1
    assert "evaluation_fraction must be in the open interval" in capsys.readouterr().err
    assert main(["evaluate", "nope", *out]) == 1
    assert "unknown dataset 'nope'" in capsys.readouterr().err


def test_source_proxies_record_flat_weights(tiny_images, tmp_path):
    """class-balanced on the perfectly balanced bars (30 train images a class): every weight equal,
    recorded per proxy seed by the build's own sample stage."""
    from proxyds.harness import streamed
    from proxyds.harness.sources import open_source_data
    from proxyds.pipeline.probes import pick_device

    cfg = EvaluateConfig.from_source(f"hf:{tiny_images}", tmp_path / "r", tiny=True, space="digits-cnn",
                                     selectors=("class-balanced", "random"), ratios=(0.25,), proxy_seeds=1,
                                     epochs=1, cache=tmp_path / "cache",
                                     build={"input_column": "image", "probe_epochs": 1, "allow_weak_probes": True,
                                            "pca_components": 4, "workers": 0, "batch_size": 32})
    data = open_source_data(cfg.data, cfg.space, tmp_path / "work", "cpu")
    made = streamed._proxy_jobs(cfg, data, ["unused"], pick_device("cpu"))
    assert made.notes["class-balanced"]["flat_weight_seeds"] == [0]
    assert made.notes["random"]["flat_weight_seeds"] == [0]


def test_an_evaluation_split_is_taken_whole(tmp_path):
    """--evaluation-split: B is the source's second held-out split, whole; A the reference split, uncut."""
    src = _image_dataset(tmp_path / "three", (("train", 90, 0), ("validation", 45, 1), ("test", 33, 2)))
    r, _ = _evaluate(tmp_path, f"hf:{src}", "--space", "digits-cnn", "--input-column", "image",
                     "--reference-split", "validation", "--evaluation-split", "test")
    assert r["data"]["sizes"] == {"train": 90, "reference_A": 45, "evaluation_B": 33}
    assert "'test'" in r["data"]["evaluation_B"] and "'validation'" in r["data"]["reference_A"]
    assert {e["evaluation_examples"] for e in _runs(tmp_path / "cache")} == {33}  # every accuracy over B only


def _runs(cache):
    return [json.loads(p.read_text()) for p in (cache / "runs").rglob("*.json")]


def test_bad_evaluation_splits_are_named(tmp_path, capsys):
    src = _image_dataset(tmp_path / "three", (("train", 30, 0), ("validation", 15, 1), ("test", 12, 2)))
    base = ["evaluate", f"hf:{src}", "--space", "digits-cnn", "--input-column", "image", "--reference-split",
            "validation", "--out", str(tmp_path / "o"), "--cache", str(tmp_path / "cache")]
    assert main([*base, "--evaluation-split", "validation"]) == 1
    assert "--evaluation-split 'validation' is the reference split" in capsys.readouterr().err
    assert main([*base, "--evaluation-split", "test", "--evaluation-fraction", "0.3"]) == 1
    assert "give one or the other" in capsys.readouterr().err
    assert main([*base, "--evaluation-split", "nope"]) == 1
    assert "nope" in capsys.readouterr().err
