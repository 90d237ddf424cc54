"""The ``digits`` preset (scikit-learn's handwritten digits as an HF image dataset) and its
``digits-cnn`` space: written once, split by class, read and built through the image path."""

from __future__ import annotations

import io
import json

import datasets
import numpy as np
import pytest
from PIL import Image

from proxyds.presets import DIGITS_ARGS, get_preset, materialize_digits, stratified_holdout

pytestmark = pytest.mark.usefixtures("hf_offline")


@pytest.fixture(scope="module")
def digits_dir(tmp_path_factory):
    return materialize_digits(DIGITS_ARGS, root=tmp_path_factory.mktemp("digits"))


def test_digits_are_png_images_split_by_class(digits_dir):
    from sklearn.datasets import load_digits

    ds = datasets.load_dataset(str(digits_dir))
    assert ds["train"].num_rows + ds["test"].num_rows == 1797
    assert ds["train"].features["label"].names == [str(i) for i in range(10)]
    train, test = np.bincount(ds["train"]["label"], minlength=10), np.bincount(ds["test"]["label"], minlength=10)
    total = np.bincount(load_digits().target, minlength=10)
    np.testing.assert_array_equal(train + test, total)
    np.testing.assert_array_equal(test, np.round(DIGITS_ARGS["test_fraction"] * total).astype(int))
    raw = ds["test"].cast_column("image", datasets.Image(decode=False))[0]["image"]["bytes"]
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    img = Image.open(io.BytesIO(raw))
    assert img.size == (8, 8) and img.mode == "L"
    pixels = {tuple(np.asarray(x).ravel()) for x in ds["train"]["image"][:50]}
    originals = {tuple(np.round(im * 255 / 16).astype(np.uint8).ravel()) for im in load_digits().images}
    assert pixels <= originals  # the real images, only stretched from 0..16 to 0..255


def test_digits_are_written_once(digits_dir):
    stamp = (digits_dir / "proxyds-cache.json").stat().st_mtime_ns
    assert materialize_digits(DIGITS_ARGS, root=digits_dir.parent) == digits_dir
    assert (digits_dir / "proxyds-cache.json").stat().st_mtime_ns == stamp
    assert json.loads((digits_dir / "proxyds-cache.json").read_text())["digits_args"] == DIGITS_ARGS
    with pytest.raises(ValueError, match="unknown digits arguments"):
        materialize_digits({"nope": 1}, root=digits_dir.parent)


def test_stratified_holdout_is_seeded_and_keeps_each_class_share():
    labels = np.repeat(np.arange(4), [10, 20, 30, 41])
    held = stratified_holdout(labels, 0.3, seed=5)
    np.testing.assert_array_equal(np.bincount(labels[held]), [3, 6, 9, 12])
    np.testing.assert_array_equal(held, stratified_holdout(labels, 0.3, seed=5))
    assert not np.array_equal(held, stratified_holdout(labels, 0.3, seed=6))
    for bad in (0, 1, 1.5, "half"):
        with pytest.raises(ValueError, match="fraction must be in the open interval"):
            stratified_holdout(labels, bad, seed=0)


@pytest.mark.slow  # about 15 s on a shared 2-core machine: four probe epochs on 1,258 images
def test_digits_preset_builds_a_proxy(digits_dir, tmp_path):
    from proxyds import build
    from proxyds.config import BuildConfig

    located = get_preset("digits").locate(str(digits_dir))
    assert (located.spec, located.input_column) == (f"hf:{digits_dir}", "image")
    assert get_preset("digits").space == "digits-cnn"
    out = tmp_path / "proxy"
    result = build(BuildConfig(dataset="digits", data=str(digits_dir), out=out, ratio=0.1, workers=0,
                               workdir=tmp_path / "work", device="cpu"))
    s = result.summary
    assert s["space"] == "digits-cnn" and s["num_selected"] == round(0.1 * s["num_train"])
    assert all(p["reference_accuracy"] > 0.2 for p in s["probes"].values())  # the default probes pass the check
    assert datasets.load_dataset(str(out))["train"].num_rows == s["num_selected"]


@pytest.mark.slow  # over a minute on a shared 2-core machine: real images through every stage
def test_evaluate_digits_tiny(digits_dir, tmp_path, capsys):
    """`proxyds evaluate digits --tiny`: the real-image benchmark's CI-sized variant, end to end."""
    from proxyds.cli import main

    out = tmp_path / "report"
    assert main(["evaluate", "digits", "--data", str(digits_dir), "--tiny", "--out", str(out), "--cache",
                 str(tmp_path / "cache"), "--build", "workers=0"]) == 0
    r = json.loads((out / "results.json").read_text())
    assert r["space"] == "digits-cnn" and len(r["configs"]) == 3 and set(r["proxies"]) == {"entropy", "random"}
    assert max(c["full_mean"] for c in r["configs"]) > 0.5  # real digits are learnt in two epochs
    assert "noise ceiling" in capsys.readouterr().out
