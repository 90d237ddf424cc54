"""Issue 12: a build never harms the user's data, never lets a skipped example shape the
proxy, finds bad input in the scan, and resumes byte-identically in skip mode too."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from proxyds.pipeline.build import build
from proxyds.pipeline.scan import BadInput
from proxyds.verifier import verify

from helpers import tiny_config, trained_probes, write_wds_copy


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def user_data(tiny_mnist1d, tmp_path):
    """A private copy of the tiny dataset, as a user's input directory."""
    src = tmp_path / "data"
    shutil.copytree(tiny_mnist1d, src)
    return src, _tree(src)


# ---------------------------------------------------------------- --out and --overwrite


@pytest.mark.parametrize("where", ["input", "parent", "inside", "symlink"])
def test_out_never_is_contains_or_lies_inside_the_input(user_data, tmp_path, where):
    src, before = user_data
    out = {"input": src, "parent": tmp_path, "inside": src / "proxy", "symlink": tmp_path / "link"}[where]
    if where == "symlink":
        out.symlink_to(src, target_is_directory=True)
    with pytest.raises(ValueError, match="input"):
        build(tiny_config(f"hf:{src}", out, overwrite=True, workdir=tmp_path / "work"))
    assert _tree(src) == before
    assert not (tmp_path / "work").exists()  # refused before any work


def test_out_clear_of_the_reference_source_too(user_data, tmp_path):
    src, before = user_data
    ref = tmp_path / "ref"
    shutil.copytree(src, ref)
    with pytest.raises(ValueError, match=f"input {ref}"):
        build(tiny_config(f"hf:{src}", ref, reference=f"hf:{ref}", overwrite=True))
    assert _tree(ref) == before


def test_overwrite_only_replaces_a_previous_output(user_data, parquet_proxy, tmp_path):
    src, _ = user_data
    other = tmp_path / "notes"
    other.mkdir()
    (other / "thesis.tex").write_text("years of work")
    with pytest.raises(FileExistsError, match="only replaces a previous proxyds output"):
        build(tiny_config(f"hf:{src}", other, overwrite=True, workdir=tmp_path / "work"))
    assert (other / "thesis.tex").read_text() == "years of work" and not (tmp_path / "work").exists()

    out, work = tmp_path / "out", tmp_path / "work"  # a previous output, and its probes to reuse
    shutil.copytree(parquet_proxy.out, out)
    shutil.copytree(parquet_proxy.workdir, work)
    (out / "stray.txt").write_text("x")
    build(tiny_config(f"hf:{parquet_proxy.src}", out, overwrite=True, seed=1, workdir=work))  # replaced whole
    assert json.loads((out / "proxy.json").read_text())["config"]["seed"] == 1
    assert (out / "proxy.json").is_file() and not (out / "stray.txt").exists()


def test_unwritable_output_location_fails_before_any_work(user_data, tmp_path):
    src, _ = user_data
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(OSError):
        build(tiny_config(f"hf:{src}", blocker / "out", workdir=tmp_path / "work"))
    assert not (tmp_path / "work").exists()


def test_cli_refuses_overwriting_the_input_in_one_line(user_data, tmp_path):
    src, before = user_data
    done = subprocess.run([sys.executable, "-m", "proxyds", "build", f"hf:{src}", "--space", "resnet1d",
                           "--input-column", "x", "--ratio", "0.1", "--out", str(src), "--overwrite"],
                          capture_output=True, text=True)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "input" in done.stderr
    assert _tree(src) == before


# ---------------------------------------------------------------- skipped examples shape nothing


def test_one_stray_label_does_not_widen_the_class_space(parquet_proxy, tmp_path):
    tiny_mnist1d, probes = parquet_proxy.src, trained_probes(parquet_proxy)  # 10-class probes: load only into 10

    def stray(split, i, key, fields):
        if split == "train" and i == 5:
            fields = dict(fields, cls=b"99")
        return key, fields

    src = write_wds_copy(tiny_mnist1d, tmp_path / "wds", edit=stray)
    r = build(tiny_config(f"wds:{src}", tmp_path / "out", input_column="x.npy", on_error="skip",
                          probe_checkpoints=probes))
    assert len(r.summary["class_names"]) == 10
    assert r.summary["skipped"]["train"] == {"skipped: class absent from the reference split": 1}
    assert verify(tmp_path / "out").ok, verify(tmp_path / "out").problems
    with pytest.raises(BadInput, match="99"):
        build(tiny_config(f"wds:{src}", tmp_path / "raise", input_column="x.npy"))


# ---------------------------------------------------------------- bad input is found by the scan


def _bad_inputs(split, i, key, fields):
    """NaN, infinite, ragged and undecodable inputs in both splits."""
    if i % 37 == 3:
        return key, dict(fields, **{"x.npy": b"\x93NUMPY garbage"})
    if i % 41 == 5:
        arr = np.full(40, np.nan if split == "train" else np.inf, np.float32)
        return key, dict(fields, **{"x.npy": _npy(arr)})
    if i % 43 == 7:
        return key, dict(fields, **{"x.npy": _npy(np.zeros(39, np.float32))})
    return key, fields


def _npy(arr) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


@pytest.fixture(scope="module")
def bad_wds(tiny_mnist1d, tmp_path_factory):
    return write_wds_copy(tiny_mnist1d, tmp_path_factory.mktemp("bad") / "wds", edit=_bad_inputs)


def _cli(src, out, work) -> list[str]:
    return [sys.executable, "-m", "proxyds", "build", f"wds:{src}", "--space", "resnet1d",
            "--input-column", "x.npy", "--ratio", "0.1", "--out", str(out), "--workdir", str(work),
            "--probe-epochs", "2", "--pca-components", "16", "--rows-per-shard", "20", "--label-reduction", "off",
            "--device", "cpu", "--on-error", "skip", "--allow-weak-probes"]


@pytest.fixture(scope="module")
def bad_wds_skipped(bad_wds, tmp_path_factory):
    """The CLI's skip-mode build of ``bad_wds``, run whole: read it, never change it."""
    root = tmp_path_factory.mktemp("bad-skip")
    subprocess.run(_cli(bad_wds, root / "out", root / "work"), check=True, capture_output=True)
    return root / "out"


def test_bad_inputs_are_found_in_the_scan_before_training(bad_wds, bad_wds_skipped, tmp_path, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="proxyds"), pytest.raises(BadInput, match="undecodable input"):
        build(tiny_config(f"wds:{bad_wds}", tmp_path / "out", input_column="x.npy"))
    assert "stage probes" not in caplog.text and not (tmp_path / "work" / "probes").exists()
    assert verify(bad_wds_skipped).ok, verify(bad_wds_skipped).problems
    summary = json.loads((bad_wds_skipped / "proxy.json").read_text())["summary"]
    skipped = summary["skipped"]["train"]
    assert sum(skipped.values()) == 480 - summary["num_train_usable"] > 0
    assert all("undecodable input" in reason for reason in skipped)
    assert any("NaN" in reason for reason in skipped) and any("39 values" in reason for reason in skipped)


BAD_KEYS = ["a/b", "/etc/passwd", "back\\slash"]


def _keyed(tiny_mnist1d, root, bad_keys):
    """The tiny dataset with an ``id`` key column whose train rows 11, 12, ... hold ``bad_keys``."""
    import datasets

    ds = datasets.load_dataset(str(tiny_mnist1d))
    (root / "data").mkdir(parents=True)
    for split in ("train", "test"):
        keys = [f"{split}{i}" for i in range(len(ds[split]))]
        if split == "train":
            keys[11:11 + len(bad_keys)] = bad_keys
        ds[split].add_column("id", keys).to_parquet(root / "data" / f"{split}-00000-of-00001.parquet")
    return root, len(ds["train"])


@pytest.mark.parametrize("key", BAD_KEYS)
def test_keys_that_cannot_be_file_names_are_found_in_the_scan(tiny_mnist1d, tmp_path, key):
    src, _ = _keyed(tiny_mnist1d, tmp_path / "keyed", [key])
    with pytest.raises(BadInput, match=r"key contains"):
        build(tiny_config(f"hf:{src}", tmp_path / "out", key_column="id"))
    assert not (tmp_path / "work" / "probes").exists()


def test_keys_that_cannot_be_file_names_are_skipped_and_the_output_verifies(parquet_proxy, tmp_path):
    src, num_train = _keyed(parquet_proxy.src, tmp_path / "keyed", BAD_KEYS)
    r = build(tiny_config(f"hf:{src}", tmp_path / "skip", key_column="id", on_error="skip", format="wds",
                          probe_checkpoints=trained_probes(parquet_proxy)))
    assert r.summary["num_train_usable"] == num_train - len(BAD_KEYS)
    assert sum(r.summary["skipped"]["train"].values()) == len(BAD_KEYS)
    assert verify(tmp_path / "skip").ok, verify(tmp_path / "skip").problems


# ---------------------------------------------------------------- resume in skip mode


def test_sigkill_after_the_first_probe_then_resume_is_byte_identical_in_skip_mode(bad_wds, bad_wds_skipped,
                                                                                   tmp_path):
    work = tmp_path / "work"
    proc = subprocess.Popen(_cli(bad_wds, tmp_path / "out", work), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not list((work / "probes").glob("*.pt")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL and len(list((work / "probes").glob("*.pt"))) == 1
    subprocess.run(_cli(bad_wds, tmp_path / "out", work), check=True, capture_output=True)
    assert _tree(tmp_path / "out") == _tree(bad_wds_skipped)
    assert verify(tmp_path / "out").ok, verify(tmp_path / "out").problems
