"""``--space module:attr`` takes a SearchSpace or a factory that says it makes one, and never
calls anything else (``os:abort``, ``os:system``, ``subprocess:Popen``)."""

from __future__ import annotations

import sys
import textwrap

import pytest

from proxyds.spaces import SearchSpace, registry, resolve_space

_MODULE = '''
from __future__ import annotations

from proxyds.spaces import ArchConfig, SearchSpace

CALLS = []
NUMBER = 7


def _make():
    CALLS.append("made")
    return SearchSpace("spec_tiny", (4,), [ArchConfig("a", {"w": 1}), ArchConfig("b", {"w": 2})],
                       lambda c, n: None)


def unannotated():
    CALLS.append("unannotated")
    return _make()


def annotated() -> SearchSpace:
    return _make()


def annotated_other() -> int:
    CALLS.append("annotated_other")
    return 3


def needs_argument(width) -> SearchSpace:
    CALLS.append("needs_argument")
    return _make()


def unresolvable() -> NoSuchName:  # noqa: F821
    CALLS.append("unresolvable")
    return _make()


def registered():
    return _make()


class Factory:
    def __call__(self) -> SearchSpace:
        CALLS.append("Factory")
        return _make()


INSTANCE = Factory()
'''


@pytest.fixture
def spec_module(tmp_path, monkeypatch):
    name = "proxyds_test_space_spec"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    module = __import__(name)
    yield module
    sys.modules.pop(name, None)


@pytest.mark.parametrize("spec,kind", [
    ("os:abort", "a builtin_function_or_method"),  # called, it would kill the test process
    ("os:system", "a builtin_function_or_method"),
    ("subprocess:Popen", "a type"),
    ("subprocess:run", "a function"),
    ("os:sep", "a str"),
])
def test_arbitrary_callables_are_refused_not_called(spec, kind):
    with pytest.raises(ValueError) as err:
        resolve_space(spec)
    text = str(err.value)
    assert f"search space {spec!r} names {kind}" in text
    assert "accepted: a SearchSpace, or a zero-argument function registered with @register_space or " \
           "annotated '-> SearchSpace'" in text


@pytest.mark.parametrize("attr,message", [
    ("NUMBER", "names an int, not a SearchSpace"),
    ("unannotated", "not registered and not annotated '-> SearchSpace' (return annotation: none), so it is not called"),
    ("annotated_other", "(return annotation: int)"),
    ("unresolvable", "return annotation cannot be resolved"),
    ("needs_argument", "needs arguments; a factory takes none"),
    ("INSTANCE", "names a Factory, not a SearchSpace"),
    ("Factory", "names a type, not a SearchSpace"),
])
def test_user_attributes_of_the_wrong_kind_are_named_and_not_called(spec_module, attr, message):
    with pytest.raises(ValueError, match=f"search space '{spec_module.__name__}:{attr}'") as err:
        resolve_space(f"{spec_module.__name__}:{attr}")
    assert message in str(err.value)
    assert spec_module.CALLS == []


def test_annotated_factory_is_called_and_checked(spec_module):
    space = resolve_space(f"{spec_module.__name__}:annotated")
    assert isinstance(space, SearchSpace) and space.name == "spec_tiny" and spec_module.CALLS == ["made"]


def test_registered_factory_is_accepted_unannotated(spec_module, monkeypatch):
    monkeypatch.setattr(registry, "_FACTORIES", registry._FACTORIES.copy())
    registry._FACTORIES.register("spec_registered", spec_module.registered)
    assert resolve_space(f"{spec_module.__name__}:registered").name == "spec_tiny"


def test_instance_is_taken_as_is():
    from tiny_spaces import tiny2d

    assert resolve_space("tiny_spaces:tiny2d") is tiny2d


def test_cli_names_the_bad_space_in_one_line(tiny_mnist1d, tmp_path, capsys):
    from proxyds.cli import main

    code = main(["build", f"hf:{tiny_mnist1d}", "--space", "os:abort", "--input-column", "x", "--ratio", "0.1",
                 "--out", str(tmp_path / "o"), "--device", "cpu"])
    assert code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("proxyds build: error: search space 'os:abort' names a builtin")
