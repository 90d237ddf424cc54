"""Search-space registry: architecture configs, compute counting and probe choice.

A :class:`SearchSpace` is a finite, ordered grid of :class:`ArchConfig` points plus a
builder that turns one point into a ``torch.nn.Module``. Spaces are registered by name with
:func:`register_space` (the timm ``@register_model`` pattern) so that other packages can add
their own; :func:`get_space` builds each space once and returns the same instance after.

The data-proxy method (Park 2019, Algorithm 1) trains the space's *boundary* configurations,
the cheapest and the most expensive by compute, as probes; :meth:`SearchSpace.probes` picks
them by multiply-accumulates (:func:`count_macs`), with parameters and name as tie-breakers,
so the choice is reproducible and does not depend on timing.

:func:`resolve_space` also accepts a ``"pkg.module:attr"`` entry point, so a space defined
in the user's own module needs no registration (``--space mypkg.spaces:my_space``): the
attribute must be a ``SearchSpace`` or a factory function annotated ``-> SearchSpace``;
nothing else is called.
"""

from __future__ import annotations

import importlib
import inspect
import re
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import torch
from torch import nn

from proxyds.registry import Registry

__all__ = [
    "ArchConfig",
    "SearchSpace",
    "register_space",
    "get_space",
    "resolve_space",
    "list_spaces",
    "count_macs",
    "count_params",
    "params_space",
]


@dataclass(frozen=True)
class ArchConfig:
    """One point of a search space: a unique ``name`` and its integer hyper-parameters.

    ``name`` is unique within its space and contains no whitespace or dots, so it can be a
    file name, a WebDataset key or a column value as is. ``params`` is stored as a read-only
    mapping; it takes no part in the hash (equal configs still hash equal, since their names
    match), which keeps the config usable as a dict key and in sets.
    """

    name: str
    params: Mapping[str, int] = field(hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"ArchConfig name must be a non-empty string, got {self.name!r}")
        if "." in self.name or any(ch.isspace() for ch in self.name):
            raise ValueError(
                f"ArchConfig name must contain no dots or whitespace, got {self.name!r}"
            )
        if not isinstance(self.params, Mapping):
            raise ValueError(
                f"ArchConfig {self.name!r}: params must be a mapping of str -> int, "
                f"got {type(self.params).__name__}"
            )
        for key, value in self.params.items():
            if not isinstance(key, str) or isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(
                    f"ArchConfig {self.name!r}: params must map str -> int, "
                    f"got {key!r}: {value!r}"
                )
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))

    def __repr__(self) -> str:
        return f"ArchConfig(name={self.name!r}, params={dict(self.params)!r})"

    def __reduce__(self):
        # mappingproxy cannot be pickled; rebuild from a plain dict (DataLoader workers, DDP).
        return (ArchConfig, (self.name, dict(self.params)))


def count_params(model: nn.Module) -> int:
    """Number of parameter elements of ``model`` (trainable or not; buffers excluded)."""
    return int(sum(p.numel() for p in model.parameters()))


_MAC_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Linear)


def _checked_shape(input_shape: tuple[int, ...], what: str) -> tuple[int, ...]:
    shape = tuple(input_shape)
    if not shape or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in shape):
        raise ValueError(f"{what} must be a non-empty tuple of positive ints, got {input_shape!r}")
    return shape


def _layer_macs(module: nn.Module, output: torch.Tensor) -> int:
    """Multiply-accumulates of one Conv1d/Conv2d/Linear call, from its output (batch of 1)."""
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    kernel = 1
    for size in module.kernel_size:
        kernel *= size
    return output.numel() * (module.in_channels // module.groups) * kernel


def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one forward pass of ONE example of ``input_shape``.

    Counts the weight multiplies of every ``Conv1d``, ``Conv2d`` and ``Linear`` call (bias
    adds, normalisation, activations and pooling are ignored: they are a rounding error
    next to the convolutions and do not change the ranking of a space's configs). The pass
    runs on a zero batch of 1 under ``torch.inference_mode`` in eval mode, so BatchNorm
    running statistics are untouched; every module's train/eval flag is restored after.
    """
    shape = _checked_shape(input_shape, "input_shape")
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32

    total = 0

    def hook(module: nn.Module, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        total += _layer_macs(module, output)

    modes = {module: module.training for module in model.modules()}
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, _MAC_LAYERS)]
    try:
        model.eval()
        with torch.inference_mode():
            model(torch.zeros((1, *shape), device=device, dtype=dtype))
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes.items():
            module.training = training
    return int(total)


class SearchSpace:
    """A named, ordered grid of architecture configs and the builder that instantiates them.

    ``builder(config, num_classes)`` returns a model with timm-style ``forward_features``
    (penultimate, globally pooled features of shape ``(N, num_features)``),
    ``forward_head`` (features -> logits) and a ``num_features`` attribute; the probes'
    features feed the nearest-neighbour mapping, so every space must expose them.
    ``input_shape`` is the per-example tensor shape the models take (no batch dimension).
    MACs and parameter counts are computed once per ``(config, num_classes)`` and cached.
    """

    def __init__(
        self,
        name: str,
        input_shape: tuple[int, ...],
        configs: tuple[ArchConfig, ...] | list[ArchConfig],
        builder: Callable[[ArchConfig, int], nn.Module],
        description: str = "",
    ) -> None:
        configs = tuple(configs)
        if not configs:
            raise ValueError(f"search space {name!r} has no configs")
        if not all(isinstance(c, ArchConfig) for c in configs):
            raise ValueError(f"search space {name!r}: configs must all be ArchConfig")
        names = [c.name for c in configs]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"search space {name!r}: duplicate config names {duplicates}")
        shape = _checked_shape(input_shape, f"search space {name!r}: input_shape")
        self.name = name
        self.input_shape = shape
        self.configs = configs
        self.description = description
        self._builder = builder
        self._by_name = {c.name: c for c in configs}
        self._stats: dict[tuple[str, int], tuple[int, int]] = {}

    def __repr__(self) -> str:
        return (
            f"SearchSpace(name={self.name!r}, input_shape={self.input_shape}, "
            f"configs={len(self.configs)})"
        )

    def config(self, name: str) -> ArchConfig:
        """The config called ``name``; an unknown name's error lists the known ones."""
        try:
            return self._by_name[name]
        except (KeyError, TypeError):
            known = ", ".join(self._by_name)
            raise ValueError(
                f"unknown config {name!r} in search space {self.name!r}; known: {known}"
            ) from None

    def _resolve(self, config: ArchConfig | str) -> ArchConfig:
        if isinstance(config, str):
            return self.config(config)
        if isinstance(config, ArchConfig):
            if self._by_name.get(config.name) != config:
                known = ", ".join(self._by_name)
                raise ValueError(
                    f"config {config!r} is not in search space {self.name!r}; known: {known}"
                )
            return config
        raise TypeError(f"config must be an ArchConfig or its name, got {type(config).__name__}")

    def build(self, config: ArchConfig | str, num_classes: int) -> nn.Module:
        """A freshly initialised model for ``config`` (seed with ``torch.manual_seed`` first)."""
        config = self._resolve(config)
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
        model = self._builder(config, num_classes)
        required = ("forward_features", "forward_head", "num_features")
        missing = [attr for attr in required if not hasattr(model, attr)]
        if missing:
            raise ValueError(
                f"search space {self.name!r}: model for {config.name!r} lacks {', '.join(missing)}"
            )
        return model

    def _stats_of(self, config: ArchConfig | str, num_classes: int) -> tuple[int, int]:
        config = self._resolve(config)
        key = (config.name, num_classes)
        if key not in self._stats:
            # Building draws from the global RNG; fork it so asking for MACs never shifts
            # the initialisation of a model the caller builds next.
            with torch.random.fork_rng(devices=[]):
                model = self.build(config, num_classes)
            self._stats[key] = (count_macs(model, self.input_shape), count_params(model))
        return self._stats[key]

    def macs(self, config: ArchConfig | str, num_classes: int = 10) -> int:
        """Multiply-accumulates for one example of ``input_shape`` (see :func:`count_macs`)."""
        return self._stats_of(config, num_classes)[0]

    def params(self, config: ArchConfig | str, num_classes: int = 10) -> int:
        """Number of parameters of ``config``'s model with a ``num_classes``-way head."""
        return self._stats_of(config, num_classes)[1]

    def probes(self, k: int = 2, num_classes: int = 10) -> list[ArchConfig]:
        """``k`` probe configs spread over the space by compute, cheapest first.

        Configs are sorted by MACs ascending (ties: params, then name). ``k=2`` gives the
        paper's ``[lower, upper]``: the cheapest and the most expensive config. A larger
        ``k`` takes indices ``round(i * (n - 1) / (k - 1))`` of that list for
        ``i = 0..k-1`` (Python's ``round``), which always includes both ends and, since
        the step is at least 1, never repeats a config.
        """
        n = len(self.configs)
        if isinstance(k, bool) or not isinstance(k, int) or not 2 <= k <= n:
            raise ValueError(
                f"k must be an int in [2, {n}] for search space {self.name!r}, got {k!r}"
            )
        ordered = sorted(
            self.configs,
            key=lambda c: (self.macs(c, num_classes), self.params(c, num_classes), c.name),
        )
        return [ordered[round(i * (n - 1) / (k - 1))] for i in range(k)]


def params_space(name: str, input_shape: tuple[int, ...], params: Iterable[dict], config_name: Callable[[dict], str],
                 model: Callable[[dict, int], nn.Module], description: str = "") -> SearchSpace:
    """A space of one model family: each config is a parameter dict named by ``config_name`` and
    built as ``model(params, num_classes)`` (``cnn1d``, ``digits-cnn``, ``mlp1d`` and their draws)."""
    def build(config: ArchConfig, num_classes: int) -> nn.Module:
        return model(dict(config.params), num_classes)

    return SearchSpace(name, input_shape, [ArchConfig(config_name(p), p) for p in params], build, description)


_FACTORIES: Registry[Callable[[], SearchSpace]] = Registry("search space")
_SPACES: dict[str, SearchSpace] = {}


def register_space(name: str) -> Callable[[Callable[[], SearchSpace]], Callable[[], SearchSpace]]:
    """Decorator registering a zero-argument factory that returns the space ``name``.

    The factory runs on the first :func:`get_space` call, so registering costs nothing at
    import. A name can be registered once; a duplicate raises ``ValueError``.
    """
    return _FACTORIES.register(name)


def list_spaces(pattern: str = "*") -> list[str]:
    """Sorted names of the registered spaces matching the fnmatch ``pattern``."""
    return _FACTORIES.names(pattern)


def get_space(name: str) -> SearchSpace:
    """The registered search space ``name`` (built once, then shared)."""
    factory = _FACTORIES.get(name)
    if name not in _SPACES:
        space = factory()
        if not isinstance(space, SearchSpace) or space.name != name:
            raise ValueError(
                f"factory for search space {name!r} must return a SearchSpace named {name!r}, "
                f"got {space!r}"
            )
        _SPACES[name] = space
    return _SPACES[name]


_ENTRY_POINT = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


def resolve_space(spec: str) -> SearchSpace:
    """The search space named by ``spec``: a registered name, ``"timm:NAME,NAME[@SIZE]"`` (timm
    models, :mod:`proxyds.spaces.timm_models`) or a ``"module:attr"`` entry point.
    A registered name gives :func:`get_space`'s shared instance. ``"pkg.module:attr"``
    (the entry-point form of ``--space mypkg.spaces:my_space``) imports ``pkg.module`` and
    takes ``attr`` (dots allowed, ``module:Class.attr``), which must be a
    :class:`SearchSpace`, or a factory: a zero-argument Python function that is registered
    with :func:`register_space` or annotated ``-> SearchSpace``. Nothing else is ever called,
    so a spec such as ``os:abort`` or ``subprocess:Popen`` cannot run code; a factory is
    called on every resolve (cache inside it if building the space is costly) and what it
    returns is checked. Every problem (unknown name, bad form, module that cannot be
    imported, attribute of the wrong kind, factory returning something else) raises a
    ``ValueError`` naming the spec and what is accepted.
    """
    if isinstance(spec, str) and spec in _FACTORIES:
        return get_space(spec)
    if isinstance(spec, str) and spec.startswith("timm:"):  # timm models by name, an optional extra
        from .timm_models import timm_space
        return timm_space(spec[len("timm:"):])
    if not isinstance(spec, str) or not _ENTRY_POINT.match(spec):
        raise ValueError(
            f"unknown search space {spec!r}; use a registered name ({', '.join(_FACTORIES.names())}), "
            f"timm:NAME,NAME (timm models) or a Python entry point 'pkg.module:attr' naming {_ACCEPTED}"
        )
    module_name, attr_path = spec.split(":")
    try:
        target = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(
            f"search space {spec!r}: cannot import module {module_name!r} ({exc})"
        ) from exc
    for attr in attr_path.split("."):
        try:
            target = getattr(target, attr)
        except AttributeError:
            raise ValueError(
                f"search space {spec!r}: module {module_name!r} has no attribute {attr_path!r}"
            ) from None
    if isinstance(target, SearchSpace):
        return target
    _check_factory(target, spec)
    space = target()
    if not isinstance(space, SearchSpace):
        raise ValueError(
            f"search space {spec!r}: {attr_path}() returned {_kind(space)}, not a SearchSpace"
        )
    return space


_ACCEPTED = (
    "a SearchSpace, or a zero-argument function registered with @register_space or "
    "annotated '-> SearchSpace'"
)


def _kind(value: object) -> str:
    """'an int', 'a builtin_function_or_method', ... for error messages."""
    name = type(value).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def _check_factory(target: object, spec: str) -> None:
    """Raise ValueError unless ``target`` is a factory :func:`resolve_space` may call.

    Only plain Python functions qualify (never builtins such as ``os.abort`` or classes such
    as ``subprocess.Popen``), and only those that say they make a space: registered with
    :func:`register_space`, or with a return annotation of ``SearchSpace`` (a subclass
    too; string annotations are resolved in the function's module).
    """
    what = f"search space {spec!r} names {_kind(target)}"
    if not inspect.isfunction(target):
        raise ValueError(f"{what}, not a SearchSpace; accepted: {_ACCEPTED}")
    if not any(target is factory for factory in _FACTORIES.values()):
        try:
            returns = typing.get_type_hints(target).get("return")
        except Exception as exc:  # noqa: BLE001 - any unresolvable annotation
            raise ValueError(f"{what} whose return annotation cannot be resolved ({exc}); "
                             f"accepted: {_ACCEPTED}") from None
        if not (inspect.isclass(returns) and issubclass(returns, SearchSpace)):
            shown = "none" if returns is None else getattr(returns, "__name__", repr(returns))
            raise ValueError(f"{what} that is not registered and not annotated '-> SearchSpace' "
                             f"(return annotation: {shown}), so it is not called; accepted: {_ACCEPTED}")
    try:
        inspect.signature(target).bind()
    except TypeError:
        raise ValueError(f"{what} that needs arguments; a factory takes none") from None
