"""``--probe ROLE=PATH`` takes state dicts as the ecosystem saves them (torch.save, safetensors,
wrapped in ``state_dict``/``model``, ``module.``/``model.`` prefixes) and refuses, naming the file
and keys, one that does not fit: another architecture, or a head for another number of classes."""

from __future__ import annotations

import pytest
import torch

from proxyds.errors import BadInput
from proxyds.spaces import get_space
from proxyds.spaces.checkpoint import load_probe

WHAT = "upper probe (torchvision_resnet resnet18, 10 classes)"


@pytest.fixture(scope="module")
def source():
    """A torchvision resnet18 with 10 classes, its state dict, an input and its logits (eval)."""
    from torchvision import models

    torch.manual_seed(0)
    net = models.resnet18(weights=None, num_classes=10)
    with torch.no_grad():  # non-default BatchNorm statistics, so they must be loaded too
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits = net.eval()(x)
    return net.state_dict(), x, logits


def _target():
    torch.manual_seed(123)  # another initialisation than the source's
    return get_space("torchvision_resnet").build("resnet18", 10)


def _assert_same_outputs(model, x, logits):
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), logits)


WRAPS = {
    "plain": lambda sd: sd,
    "state_dict": lambda sd: {"state_dict": sd, "epoch": 3},
    "model": lambda sd: {"model": sd, "optimizer": {"lr": torch.tensor(0.1)}},
    "ddp": lambda sd: {"state_dict": {f"module.{k}": v for k, v in sd.items()}},
    "lightning": lambda sd: {"state_dict": {f"model.{k}": v for k, v in sd.items()}},
    "compiled_ddp": lambda sd: {f"module._orig_mod.{k}": v for k, v in sd.items()},
}


@pytest.mark.parametrize("wrap", sorted(WRAPS))
def test_a_torchvision_state_dict_loads_in_its_wrappers(source, tmp_path, wrap):
    state, x, logits = source
    path = tmp_path / "probe.pt"
    torch.save(WRAPS[wrap](state), path)
    model = _target()
    load_probe(model, path, WHAT)
    _assert_same_outputs(model, x, logits)


def test_a_safetensors_file_loads(source, tmp_path):
    safetensors = pytest.importorskip("safetensors.torch")
    state, x, logits = source
    path = tmp_path / "probe.safetensors"
    safetensors.save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    model = _target()
    load_probe(model, path, WHAT)
    _assert_same_outputs(model, x, logits)


def test_an_old_file_without_batch_counters_loads(source, tmp_path):
    """torchvision's older ImageNet files lack BatchNorm's num_batches_tracked; torch fills it in."""
    state, x, logits = source
    path = tmp_path / "old.pt"
    torch.save({k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}, path)
    model = _target()
    load_probe(model, path, WHAT)
    _assert_same_outputs(model, x, logits)


def test_another_architecture_is_refused_naming_file_and_keys(tmp_path):
    from torchvision import models

    path = tmp_path / "r34.pt"
    torch.save(models.resnet34(weights=None, num_classes=10).state_dict(), path)
    with pytest.raises(BadInput) as err:
        load_probe(_target(), path, WHAT)
    message = str(err.value)
    assert f"checkpoint {path} does not fit the {WHAT}" in message
    assert "unexpected keys: layer1.2.conv1.weight" in message and "more)" in message


def test_missing_and_reshaped_keys_are_named(source, tmp_path):
    state = dict(source[0])
    del state["layer4.1.bn2.bias"]
    state["conv1.weight"] = torch.zeros(64, 3, 3, 3)
    path = tmp_path / "edited.pt"
    torch.save(state, path)
    with pytest.raises(BadInput, match=r"1 missing keys: layer4\.1\.bn2\.bias; 1 keys of another shape "
                                       r"\(file vs model\): conv1\.weight \[64, 3, 3, 3\] vs \[64, 3, 7, 7\]"):
        load_probe(_target(), path, WHAT)


def test_a_head_for_other_classes_is_refused_saying_what_to_do(tmp_path):
    from torchvision import models

    path = tmp_path / "imagenet.pt"
    torch.save(models.resnet18(weights=None).state_dict(), path)  # the 1000-class ImageNet head
    with pytest.raises(BadInput, match=r"imagenet\.pt does not fit .* its classifier fc\.(weight|bias) is for 1000 "
                                       r"classes, the data has 10: .*fine-tune"):
        load_probe(_target(), path, WHAT)


@pytest.mark.parametrize("content", [[torch.zeros(2)], {"weights": "not tensors"}])
def test_something_else_than_a_state_dict_is_refused(tmp_path, content):
    path = tmp_path / "odd.pt"
    torch.save(content, path)
    with pytest.raises(BadInput, match=r"odd\.pt does not fit .*not a state dict of tensors"):
        load_probe(_target(), path, WHAT)
