"""The optional timm space (``--space timm:NAME,NAME[@SIZE]``) and timm checkpoints as probes.

Every model is made with ``pretrained=False`` and every checkpoint here is written by the test;
the build runs with the Hub offline and sockets refused, so nothing is downloaded."""

from __future__ import annotations

import socket
import sys

import pytest
import torch

from proxyds.errors import BadInput
from proxyds.spaces import get_space, resolve_space
from proxyds.spaces.checkpoint import load_probe
from proxyds.spaces.timm_models import timm_space

timm = pytest.importorskip("timm")

SPEC = "timm:test_resnet,resnet10t@32"  # two small timm ResNets on 32x32 inputs


def _timm_model(name: str, num_classes: int, seed: int = 0):
    torch.manual_seed(seed)
    return timm.create_model(name, pretrained=False, num_classes=num_classes).eval()


def _x():
    return torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def test_features_are_timms_pooled_pre_logits_and_the_head_its_classifier(tmp_path):
    space = resolve_space(SPEC)
    assert space.name == SPEC and space.input_shape == (3, 32, 32)
    assert [c.name for c in space.probes()] == sorted(["test_resnet", "resnet10t"], key=space.macs)
    reference = _timm_model("resnet10t", 10)
    path = tmp_path / "r10t.pt"
    torch.save(reference.state_dict(), path)  # timm's own key names, unchanged
    model = space.build("resnet10t", 10)
    load_probe(model, path, "upper probe")
    model.eval()
    with torch.no_grad():
        feats = model.forward_features(_x())
        torch.testing.assert_close(feats, reference.forward_head(reference.forward_features(_x()), pre_logits=True))
        assert feats.shape == (2, model.num_features)
        torch.testing.assert_close(model.forward_head(feats), reference(_x()))
        torch.testing.assert_close(model(_x()), reference(_x()))


def test_input_size_comes_from_timm_or_after_the_at():
    assert resolve_space("timm:resnet18,resnet50").input_shape == (3, 224, 224)  # pretrained_cfg['input_size']
    with pytest.raises(ValueError, match=r"input sizes differ \(test_resnet \(3, 160, 160\), resnet10t "
                                         r"\(3, 176, 176\)\); give one after @"):
        resolve_space("timm:test_resnet,resnet10t")


@pytest.mark.parametrize("spec, message", [
    ("timm:resnet18", "at least two different model names"),
    ("timm:resnet18,resnet18", "at least two different model names"),
    ("timm:resnet50.a1_in1k,resnet18", "without pretrained tags"),
    ("timm:resnet18,resnet50@", "optionally @SIZE"),
    ("timm:resnet18,resnet50@0", "@SIZE must be a positive int"),
    ("timm:resnet18,resnett50", r"'resnett50' is not a timm model; similar: .*resnet"),
])
def test_a_bad_spec_says_what_is_accepted(spec, message):
    with pytest.raises(ValueError, match=message):
        resolve_space(spec)


def test_missing_timm_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # import timm -> ImportError
    timm_space.cache_clear()
    with pytest.raises(ValueError, match=r"pip install 'proxyds\[timm\]'"):
        resolve_space("timm:resnet18,resnet34")
    timm_space.cache_clear()


def test_a_timm_resnet_checkpoint_loads_into_the_imagenet_probe(tmp_path):
    """timm's ResNets use torchvision's key names: a timm resnet18 is a torchvision_resnet probe."""
    reference = _timm_model("resnet18", 10, seed=3)
    path = tmp_path / "timm_r18.safetensors"
    pytest.importorskip("safetensors.torch").save_file(reference.state_dict(), str(path))
    model = get_space("torchvision_resnet").build("resnet18", 10)
    load_probe(model, path, "lower probe")
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(_x()), reference(_x()))


def test_a_checkpoint_of_another_timm_model_names_the_keys(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"state_dict": _timm_model("test_resnet", 10).state_dict()}, path)
    with pytest.raises(BadInput, match=r"other\.pt does not fit the upper probe .*(missing|unexpected) keys: "):
        load_probe(resolve_space(SPEC).build("resnet10t", 10), path, "upper probe (resnet10t)")


def test_build_and_verify_with_timm_checkpoints_offline(tmp_path, hf_offline, monkeypatch):
    import importlib.util
    from pathlib import Path

    from proxyds.cli import main
    from proxyds.config import BuildConfig
    from proxyds.pipeline.build import build

    def refuse(*_args, **_kwargs):
        raise AssertionError("a network connection was attempted")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    tool = Path(__file__).resolve().parents[1] / "tools" / "make_synthetic_imagenet.py"
    spec = importlib.util.spec_from_file_location("make_synthetic_imagenet_timm", tool)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.make_synthetic_cifar(tmp_path / "c10", num_train=100, num_test=40, num_classes=10)

    space = resolve_space(SPEC)
    lower, upper = (c.name for c in space.probes())
    lower_path, upper_path = tmp_path / f"{lower}.safetensors", tmp_path / f"{upper}.pt"
    pytest.importorskip("safetensors.torch").save_file(_timm_model(lower, 10).state_dict(), str(lower_path))
    torch.save({"state_dict": {f"module.{k}": v for k, v in _timm_model(upper, 10).state_dict().items()}},
               upper_path)  # as timm's train.py under DDP leaves it
    out = tmp_path / "proxy"
    result = build(BuildConfig(dataset="cifar10", data=str(tmp_path / "c10"), out=out, ratio=0.2, space=SPEC,
                               probe_checkpoints=(f"lower={lower_path}", f"upper={upper_path}"), batch_size=32,
                               pca_components=8, workdir=tmp_path / "work", device="cpu", workers=0,
                               label_reduction="off", allow_weak_probes=True))  # untrained weights: at chance
    assert result.summary["num_selected"] == 20 and result.summary["space"] == SPEC
    assert not (tmp_path / "work" / "probes").exists()  # both probes loaded, none trained
    assert main(["verify", str(out)]) == 0
