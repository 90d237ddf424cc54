"""``--precision``: which arithmetic the probes run in on which device, that the CPU computes as
before, that bf16 without a device for it is refused, and the GPU-only helpers (autocast,
channels_last, pinned batches) doing nothing on the CPU. No GPU here: CUDA devices are faked
by their compute capability."""

from __future__ import annotations

from contextlib import nullcontext
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch.utils.data._utils.pin_memory import pin_memory

from proxyds.cli import main
from proxyds.config import BuildConfig
from proxyds.harness.settings import SourceSpec
from proxyds.pipeline.build import build
from proxyds.pipeline.loader import Batch
from proxyds.pipeline.probes import autocast, place_model, resolve_precision, score_batch, to_device
from proxyds.pipeline.score import _precision_key

from helpers import tiny_config

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.fixture
def capability(monkeypatch):
    """Fake the CUDA device's compute capability: ``capability(9, 0)`` is an H100."""
    monkeypatch.setattr(torch.version, "hip", None)

    def set_to(major: int, minor: int = 0):
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (major, minor))
    return set_to


def test_the_cpu_always_computes_in_fp32():
    assert resolve_precision(CPU, "auto") == "fp32"
    assert resolve_precision(CPU, "fp32") == "fp32"
    with pytest.raises(ValueError, match=r"precision bf16 needs a CUDA device .*device 'cpu' is not a CUDA device: "
                                         r"use --precision auto or fp32"):
        resolve_precision(CPU, "bf16")


def test_auto_is_bf16_only_where_the_gpu_has_native_bfloat16(capability):
    capability(9, 0)
    assert resolve_precision(CUDA, "auto") == "bf16"
    assert resolve_precision(CUDA, "bf16") == "bf16"
    assert resolve_precision(CUDA, "fp32") == "fp32"
    capability(7, 5)  # a T4: bfloat16 only emulated
    assert resolve_precision(CUDA, "auto") == "fp32"
    with pytest.raises(ValueError, match=r"device 'cuda' has no native bfloat16 \(compute capability < 8.0\)"):
        resolve_precision(CUDA, "bf16")


@pytest.mark.parametrize("bad", ["fp16", "BF16", None])
def test_an_unknown_precision_lists_the_valid_ones(bad):
    with pytest.raises(ValueError, match=r"precision must be one of auto, fp32, bf16 \(got "):
        resolve_precision(CPU, bad)
    with pytest.raises(ValueError, match=r"precision must be one of auto, fp32, bf16 \(got "):
        BuildConfig(dataset="mnist1d", out="o", ratio=0.1, precision=bad)


def test_autocast_is_entered_only_for_bf16_on_cuda():
    for device, precision in ((CPU, "fp32"), (CPU, "bf16"), (CUDA, "fp32")):
        assert isinstance(autocast(device, precision), nullcontext)
    with pytest.warns(UserWarning):  # constructing it here warns that CUDA is not available; it is not entered
        ctx = autocast(CUDA, "bf16")
    assert isinstance(ctx, torch.autocast) and ctx.device == "cuda" and ctx.fast_dtype == torch.bfloat16


def test_precision_is_part_of_the_cache_keys_except_fp32(capability):
    plan = SimpleNamespace(config=SimpleNamespace(precision="auto"))
    assert _precision_key(plan, CPU) == []  # fp32: the keys of a work dir from before --precision
    capability(8, 0)
    assert _precision_key(plan, CUDA) == ["bf16"]
    plan.config.precision = "fp32"
    assert _precision_key(plan, CUDA) == []


def test_on_the_cpu_models_and_batches_keep_their_layout():
    model = torch.nn.Conv2d(3, 4, 3)
    assert place_model(model, CPU) is model and model.weight.is_contiguous()
    x = torch.randn(2, 3, 8, 8)
    assert to_device(x, CPU) is x


def test_a_batch_pins_its_inputs_when_the_loader_asks(monkeypatch):
    # No GPU here to pin memory for: stand in for Tensor.pin_memory and check the DataLoader's
    # pinning step reaches the batch's inputs and keeps the rest.
    monkeypatch.setattr(torch.Tensor, "pin_memory", lambda self, *a, **k: self + 1)
    batch = Batch(np.array([3, 5]), ["a", "b"], torch.zeros(2, 4), [(7, "c", 0, "bad")])
    pinned = pin_memory(batch)
    assert isinstance(pinned, Batch) and torch.equal(pinned.x, torch.ones(2, 4))
    assert pinned.positions.tolist() == [3, 5] and pinned.keys == ["a", "b"] and pinned.bad == batch.bad


def test_score_batch_outputs_are_float32_in_either_precision_setting_on_cpu():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(8, 3))
    model.forward_features, model.forward_head = (lambda x: model[0](x)), (lambda f: model[1](f))
    x = torch.randn(5, 1, 8)
    a = score_batch([model], x, feature_model=0, device=CPU, labels=np.zeros(5, np.int64))
    b = score_batch([model], x, feature_model=0, device=CPU, labels=np.zeros(5, np.int64), precision="fp32")
    assert a.feats.dtype == np.float32 and a.true_prob.dtype == np.float32
    np.testing.assert_array_equal(a.feats, b.feats)


def test_a_cpu_build_is_the_same_with_auto_and_fp32_and_records_it(parquet_proxy, tmp_path):
    out = tmp_path / "fp32"
    result = build(tiny_config(f"hf:{parquet_proxy.src}", out, precision="fp32", workdir=tmp_path / "work"))
    assert result.summary["precision"] == parquet_proxy.result.summary["precision"] == "fp32"
    assert (out / "manifest.parquet").read_bytes() == (parquet_proxy.out / "manifest.parquet").read_bytes()
    assert result.summary["probe_checkpoints"] == parquet_proxy.result.summary["probe_checkpoints"]


def test_bf16_on_the_cpu_is_refused_before_anything_runs(tiny_mnist1d, tmp_path, capsys):
    argv = ["build", f"hf:{tiny_mnist1d}", "--space", "resnet1d", "--input-column", "x", "--ratio", "0.1",
            "--out", str(tmp_path / "o"), "--workdir", str(tmp_path / "work"), "--device", "cpu", "--precision", "bf16"]
    assert main(argv) == 1
    assert "precision bf16 needs a CUDA device" in capsys.readouterr().err
    assert main([*argv, "--dry-run"]) == 1
    assert not (tmp_path / "o").exists() and not (tmp_path / "work").exists()


def test_evaluate_passes_precision_to_its_builds():
    spec = SourceSpec("digits", build=(("precision", "fp32"),))
    assert spec.build_config("digits-cnn", "w", "cpu").precision == "fp32"
    assert SourceSpec("digits").build_config("digits-cnn", "w", "cpu").precision == "auto"


def test_a_dry_run_says_the_precision(tiny_mnist1d, tmp_path, capsys):
    assert main(["build", f"hf:{tiny_mnist1d}", "--space", "resnet1d", "--input-column", "x", "--ratio", "0.1",
                 "--out", str(tmp_path / "o"), "--workdir", str(tmp_path / "work"), "--device", "cpu",
                 "--dry-run"]) == 0
    assert "device cpu (fp32)" in capsys.readouterr().out
