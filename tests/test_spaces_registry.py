"""The search-space registry: ArchConfig validation, unknown names list the known ones,
registering new spaces, and user-defined spaces through resolve_space('module:attr')."""

from __future__ import annotations

import pickle
import sys
import textwrap

import pytest
import torch

from proxyds.spaces import (
    ArchConfig,
    SearchSpace,
    get_space,
    list_spaces,
    register_space,
    resolve_space,
)
from proxyds.spaces import registry
from tiny_spaces import TinyNet


# --- configs and the registry ---------------------------------------------------------


def test_arch_config_is_hashable_comparable_and_picklable():
    a = ArchConfig("B8-K3-M2", {"B": 8, "K": 3, "M": 2})
    b = ArchConfig("B8-K3-M2", {"B": 8, "K": 3, "M": 2})
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != ArchConfig("B8-K3-M2", {"B": 8, "K": 3, "M": 4})
    assert pickle.loads(pickle.dumps(a)) == a
    with pytest.raises(TypeError):
        a.params["B"] = 16


@pytest.mark.parametrize(
    "name,params",
    [("", {}), ("has space", {}), ("a.b", {}), ("ok", {"B": 1.5}), ("ok", {"B": True})],
)
def test_arch_config_rejects_bad_values(name, params):
    with pytest.raises(ValueError):
        ArchConfig(name, params)


def test_unknown_config_lists_known():
    space = get_space("resnet1d")
    with pytest.raises(ValueError, match="'nope'.*B8-K3-M2, B8-K3-M4"):
        space.config("nope")
    with pytest.raises(ValueError, match="not in search space"):
        space.build(ArchConfig("B8-K3-M2", {"B": 8, "K": 3, "M": 3}), num_classes=10)
    with pytest.raises(ValueError, match="num_classes"):
        space.build("B8-K3-M2", num_classes=0)


def test_get_space_unknown_lists_known():
    known = r"unknown search space 'nope'; known: .*resnet1d, resnet20"
    with pytest.raises(ValueError, match=known):
        get_space("nope")


def test_list_spaces():
    names = list_spaces()
    assert {"resnet1d", "resnet20"} <= set(names)
    assert names == sorted(names)
    assert list_spaces("resnet1*") == ["resnet1d"]
    assert list_spaces("nothing*") == []


def test_get_space_returns_one_instance():
    assert get_space("resnet20") is get_space("resnet20")


def test_register_duplicate_fails():
    with pytest.raises(ValueError, match="'resnet1d' is already registered"):
        register_space("resnet1d")


def test_register_new_space(monkeypatch):
    monkeypatch.setattr(registry, "_FACTORIES", registry._FACTORIES.copy())
    monkeypatch.setattr(registry, "_SPACES", dict(registry._SPACES))

    @register_space("tiny_test")
    def tiny():
        configs = [ArchConfig("w3", {"w": 3})]
        return SearchSpace("tiny_test", (4,), configs, lambda c, n: TinyNet(3, n))

    assert "tiny_test" in list_spaces()
    assert get_space("tiny_test").name == "tiny_test"
    with pytest.raises(ValueError, match="already registered"):
        register_space("tiny_test")(tiny)

# --- user-defined spaces: resolve_space ---------------------------------------------

_USER_MODULE = """
import torch
from torch import nn
from proxyds.spaces import ArchConfig, SearchSpace


class Net(nn.Module):
    def __init__(self, width, num_classes):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, width), nn.BatchNorm1d(width))
        self.fc = nn.Linear(width, num_classes)
        self.num_features = width

    def forward_features(self, x):
        return self.body(x)

    def forward_head(self, features):
        return self.fc(features)

    def forward(self, x):
        return self.forward_head(self.forward_features(x))


def make_space() -> SearchSpace:
    configs = [ArchConfig("w8", {"w": 8}), ArchConfig("w2", {"w": 2}), ArchConfig("w4", {"w": 4})]
    return SearchSpace("user_tiny", (4,), configs, lambda c, n: Net(c.params["w"], n))


SPACE = make_space()


class Holder:
    space = SPACE


NOT_A_SPACE = 3


def bad_factory() -> SearchSpace:
    return "nope"
"""


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    name = "proxyds_test_user_spaces"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(_USER_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_resolve_space_registered_name():
    assert resolve_space("resnet20") is get_space("resnet20")


@pytest.mark.parametrize("attr", ["SPACE", "make_space", "Holder.space"])
def test_resolve_space_entry_point_end_to_end(user_module, attr):
    space = resolve_space(f"{user_module}:{attr}")
    assert isinstance(space, SearchSpace) and space.name == "user_tiny"
    lower, upper = space.probes()
    assert (lower.name, upper.name) == ("w2", "w8")
    torch.manual_seed(0)
    model = space.build(upper, num_classes=3)
    x = torch.randn(2, 4)
    assert model(x).shape == (2, 3)
    assert model.forward_features(x).shape == (2, model.num_features) == (2, 8)


@pytest.mark.parametrize("spec", ["nope", "a:b:c", "mod:", ":attr", "1mod:x", "mod:x y", ""])
def test_resolve_space_bad_spec_lists_names_and_form(spec):
    with pytest.raises(ValueError, match=r"resnet1d, resnet20.*'pkg\.module:attr'"):
        resolve_space(spec)


def test_resolve_space_import_and_attribute_errors(user_module):
    with pytest.raises(ValueError, match=r"cannot import module 'no_such_mod_xyz\.sub'"):
        resolve_space("no_such_mod_xyz.sub:space")
    with pytest.raises(ValueError, match=f"module '{user_module}' has no attribute 'missing'"):
        resolve_space(f"{user_module}:missing")
    with pytest.raises(ValueError, match="names an int, not a SearchSpace"):
        resolve_space(f"{user_module}:NOT_A_SPACE")
    with pytest.raises(ValueError, match=r"bad_factory\(\) returned a str, not a SearchSpace"):
        resolve_space(f"{user_module}:bad_factory")
