"""What ``proxyds evaluate`` does: the named in-memory benchmarks, a source as ``proxyds build``
takes it (:class:`SourceSpec`), and :class:`EvaluateConfig`, validated once here."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, replace
from pathlib import Path

from proxyds.harness.data import DataSpec, TrainRecipe
from proxyds.recipe import RECOMMENDED, ProxyRecipe
from proxyds.selection.sampling import proxy_size

__all__ = ["BENCHMARKS", "DEFAULT_SELECTORS", "SourceSpec", "EvaluateConfig", "TINY_SOURCE"]

#: Named evaluation settings. ``mnist1d-cnn`` is the discriminative standard benchmark (see
#: ``report.DISCRIMINATIVE``; the setting docs/benchmarks-selectors.md measures); ``tiny`` is a CI
#: smoke run of a few seconds.
BENCHMARKS: dict[str, dict] = {
    "mnist1d-cnn": dict(
        data=DataSpec({"num_samples": 40_000, "train_split": 0.5, "iid_noise_scale": 0.05,
                       "corr_noise_scale": 0.35, "seed": 42}, train=8_000, reference=(0, 5_000),
                      evaluation=(5_000, 15_000)),
        space="cnn1d", recipe=TrainRecipe(epochs=10, batch_size=128, lr=2e-3), ratios=(0.05, 0.1),
        full_seeds=3, proxy_seeds=3),
    "mnist1d-mlp": dict(
        data=DataSpec({"num_samples": 40_000, "train_split": 0.5, "seed": 7}, train=8_000, reference=(0, 5_000),
                      evaluation=(5_000, 15_000)),
        space="mlp1d", recipe=TrainRecipe(epochs=10, batch_size=128, lr=2e-3), ratios=(0.05, 0.1),
        full_seeds=3, proxy_seeds=3),
    "tiny": dict(
        data=DataSpec({"num_samples": 800, "train_split": 0.5, "seed": 42}, train=400, reference=(0, 150),
                      evaluation=(150, 400)),
        space="cnn1d", configs=("w8-d1-k5-pool-nobn-plain-relu-p0-max", "w8-d3-k3-stem-bn-res-relu-p0-flat",
                                "w24-d1-k5-stem-nobn-res-tanh-p0-flat"),
        recipe=TrainRecipe(epochs=2, batch_size=64, lr=2e-3), ratios=(0.1, 0.25), full_seeds=2, proxy_seeds=2),
}

DEFAULT_SELECTORS = ("random", "class-balanced", "entropy", "probe")  # the build's default first

#: ``--tiny`` with a source: a smoke run of seconds on a small dataset (3 configs spread by MACs).
TINY_SOURCE = dict(recipe=TrainRecipe(epochs=2, batch_size=64, lr=2e-3), ratios=(0.25,), full_seeds=2,
                   proxy_seeds=2, selectors=("entropy", "random"), tiny_configs=3)

# Build settings the harness sets itself for every proxy (or that make no sense here).
_HARNESS_SET = ("dataset", "out", "ratio", "seed", "selector", "probe_seed", "data", "workdir", "overwrite",
                "device", "extra", "space")


@dataclass(frozen=True)
class SourceSpec:
    """A dataset as ``proxyds build`` takes it: a preset (``digits``, ``cifar10``, …; ``data`` is its
    ``--data``) or a source (``hf:DIR``, ``wds:…``). The build's held-out split is cut in two,
    class-stratified with ``split_seed``: evaluation split B (``evaluation_fraction`` of it: every
    accuracy) and reference split A (the rest: the build's reference split, scoring importance).
    With ``evaluation_split`` (a second held-out split of the source), B is that split whole and A
    the build's reference split, uncut. ``build`` holds other :class:`~proxyds.config.BuildConfig` settings as (field, value) pairs
    (``input_column``, ``probe_epochs``, ``label_reduction``, ``workers``, …)."""

    source: str
    data: str | None = None
    evaluation_fraction: float = 0.5
    split_seed: int = 0
    build: tuple[tuple[str, object], ...] = ()
    evaluation_split: str | None = None

    def __post_init__(self):
        from proxyds.config import BuildConfig

        if not isinstance(self.source, str) or not self.source:
            raise ValueError(f"source must be a preset name or an hf:/wds: source (got {self.source!r})")
        f = self.evaluation_fraction
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f < 1:
            raise ValueError(f"evaluation_fraction must be in the open interval (0, 1) (got {f!r})")
        if isinstance(self.split_seed, bool) or not isinstance(self.split_seed, int) or self.split_seed < 0:
            raise ValueError(f"split_seed must be a non-negative integer (got {self.split_seed!r})")
        if self.evaluation_split is not None and (not isinstance(self.evaluation_split, str)
                                                  or not self.evaluation_split):
            raise ValueError(f"evaluation_split must be a split name such as 'validation' (got "
                             f"{self.evaluation_split!r})")
        known = {f.name for f in dataclasses.fields(BuildConfig)} - set(_HARNESS_SET)
        pairs = tuple((str(k), v) for k, v in dict(self.build).items())
        for key, _ in pairs:
            if key not in known:
                raise ValueError(f"build setting {key!r} is not one the evaluation passes on; known: "
                                 f"{', '.join(sorted(known))}")
        object.__setattr__(self, "build", pairs)

    def build_config(self, space: str, workdir: Path, device: str, *, ratio: float = 0.1, seed: int = 0,
                     selector: str = "random"):
        """The BuildConfig of the proxy of ``selector`` x ``ratio`` x ``seed`` (probes trained with seed ``seed``)."""
        from proxyds.config import BuildConfig

        return BuildConfig(dataset=self.source, data=self.data, out=Path(workdir) / "unwritten", ratio=ratio,
                           seed=seed, probe_seed=seed, selector=selector, space=space, workdir=Path(workdir),
                           device=device, **dict(self.build))


@dataclass(frozen=True)
class EvaluateConfig:
    """What ``proxyds evaluate`` does; build one from a named benchmark with :meth:`from_benchmark`.

    ``configs`` None = every config of the space. Proxy run ``s`` draws with seed ``s`` for every
    selector (common random numbers: the same uniforms, different weights) and trains with seed
    ``1000 + s``; full-data run ``s`` trains with seed ``s``. ``data`` is an in-memory MNIST-1D
    benchmark (:class:`DataSpec`, :meth:`from_benchmark`) or any source ``proxyds build`` reads
    (:class:`SourceSpec`, :meth:`from_source`: proxy seed ``s`` is then the build's ``--seed s``
    and ``--probe-seed s``, the same probes serving every selector and ratio).
    """

    out: Path
    data: DataSpec | SourceSpec
    space: str = "cnn1d"
    configs: tuple[str, ...] | None = None
    selectors: tuple[str, ...] = DEFAULT_SELECTORS
    ratios: tuple[float, ...] = (0.05, 0.1)
    full_seeds: int = 3
    proxy_seeds: int = 3
    recipe: TrainRecipe = TrainRecipe()
    proxy_recipe: ProxyRecipe = RECOMMENDED
    workers: int = 1
    threads: int = 1
    cache: Path | None = None
    benchmark: str = "custom"
    device: str = "cpu"           # cpu, cuda, cuda:N or auto

    def __post_init__(self):
        from proxyds.selection.selectors import get_selector

        object.__setattr__(self, "out", Path(self.out))
        for name in self.selectors:
            get_selector(name)  # unknown names raise, listing the known
        if not self.selectors or len(set(self.selectors)) != len(self.selectors):
            raise ValueError(f"selectors must be a non-empty list without repeats (got {self.selectors!r})")
        if not self.ratios:
            raise ValueError("ratios must name at least one proxy size")
        for r in self.ratios:  # (0, 1), and a non-empty proxy where the train size is known
            proxy_size(r, self.data.train if isinstance(self.data, DataSpec) else 10**12)
        for name in ("full_seeds", "proxy_seeds", "workers", "threads"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer (got {v!r})")
        if self.configs is not None and len(self.configs) < 3:
            raise ValueError(f"a ranking needs at least 3 configs, so that its top half holds 2 (got "
                             f"{self.configs!r})")

    def proxy_training(self, ratio: float) -> TrainRecipe:
        """The recipe a proxy of ``ratio`` trains with: ``proxy_recipe`` applied to ``recipe``."""
        epochs, batch_size, lr = self.proxy_recipe.apply(self.recipe.epochs, self.recipe.batch_size, self.recipe.lr,
                                                         ratio)
        return replace(self.recipe, epochs=epochs, batch_size=batch_size, lr=lr)

    def proxy_cost(self, ratio: float, num_train: int) -> dict:
        """What one proxy run of ``ratio`` costs beside one full-data run of ``num_train`` examples:
        optimiser steps and training FLOPs (examples x epochs: the same model, so the same FLOPs
        per example), each also as a fraction of the full run's."""
        if isinstance(num_train, bool) or not isinstance(num_train, int) or num_train < 1:
            raise ValueError(f"num_train must be a positive int (got {num_train!r})")
        full, proxy = self.recipe, self.proxy_training(ratio)
        k = proxy_size(ratio, num_train)
        steps = -(-k // proxy.batch_size) * proxy.epochs
        full_steps = -(-num_train // full.batch_size) * full.epochs
        return {"examples": k, "steps": steps, "full_steps": full_steps, "steps_fraction": steps / full_steps,
                "flops_fraction": (k * proxy.epochs) / (num_train * full.epochs)}

    @classmethod
    def from_benchmark(cls, name: str, out, **overrides) -> "EvaluateConfig":
        """The benchmark ``name``'s settings, with ``overrides`` (None values ignored): any field,
        the recipe's (epochs, batch_size, lr, weight_decay), the proxy recipe's (proxy_epoch_scale,
        proxy_batch_power, proxy_lr_batch_power) and the data's (train, reference, evaluation, and
        generator, merged into the benchmark's generator arguments)."""
        if name not in BENCHMARKS:
            raise ValueError(f"unknown benchmark {name!r}; known: {', '.join(sorted(BENCHMARKS))}")
        fields = dict(BENCHMARKS[name], benchmark=name)
        if overrides.get("space") not in (None, fields.get("space")):
            fields.pop("configs", None)  # the benchmark's config names belong to its own space
        _training(fields, overrides)
        data = {k: overrides.pop(k) for k in ("train", "reference", "evaluation", "generator") if k in overrides}
        if data.get("generator"):
            data["generator"] = {**fields["data"].generator, **data["generator"]}
        fields["data"] = replace(fields["data"], **{k: v for k, v in data.items() if v})
        fields.update({k: v for k, v in overrides.items() if v is not None})
        return cls(out=out, **fields)

    @classmethod
    def from_source(cls, source: str, out, *, tiny: bool = False, data: str | None = None,
                    evaluation_fraction: float | None = None, split_seed: int | None = None,
                    evaluation_split: str | None = None, build: dict | None = None,
                    **overrides) -> "EvaluateConfig":
        """Evaluate on ``source`` (a preset or ``hf:``/``wds:`` source, as ``proxyds build`` takes it)
        with ``overrides`` as in :meth:`from_benchmark` (None values ignored). ``space`` defaults to
        a preset's; ``tiny`` is a smoke run (:data:`TINY_SOURCE`, on 3 configs spread by MACs)."""
        from proxyds.presets import get_preset
        from proxyds.spaces import resolve_space

        for name in ("train", "reference", "evaluation", "generator"):
            if overrides.pop(name, None) is not None:
                raise ValueError(f"{name} sets rows of the generated MNIST-1D benchmarks; a source's splits are "
                                 f"chosen with --train-split / --reference-split and --evaluation-fraction")
        space = overrides.pop("space", None) or (None if ":" in source else get_preset(source).space)
        if space is None:
            raise ValueError(f"--space is required for the source {source!r} (see `proxyds spaces`)")
        fields = dict(TINY_SOURCE) if tiny else {}
        n_tiny = fields.pop("tiny_configs", None)
        if n_tiny and not overrides.get("configs"):
            fields["configs"] = tuple(c.name for c in resolve_space(space).probes(min(n_tiny, len(
                resolve_space(space).configs))))
        fields.update(benchmark=source, space=space)
        _training(fields, overrides)
        if evaluation_split is not None and (evaluation_fraction is not None or split_seed is not None):
            raise ValueError(f"--evaluation-split {evaluation_split!r} takes evaluation split B whole; "
                             f"--evaluation-fraction and --split-seed cut B out of the reference split instead "
                             f"(give one or the other)")
        spec = {"evaluation_fraction": evaluation_fraction, "split_seed": split_seed,
                "evaluation_split": evaluation_split}
        fields["data"] = SourceSpec(source, data, build=tuple((build or {}).items()),
                                    **{k: v for k, v in spec.items() if v is not None})
        fields.update({k: v for k, v in overrides.items() if v is not None})
        return cls(out=out, **fields)


def _training(fields: dict, overrides: dict) -> None:
    """Move the recipe's and the proxy recipe's overrides (epochs, batch_size, lr, weight_decay;
    proxy_epoch_scale, proxy_batch_power, proxy_lr_batch_power) from ``overrides`` into ``fields``."""
    recipe = {k: overrides.pop(k) for k in ("epochs", "batch_size", "lr", "weight_decay") if k in overrides}
    fields["recipe"] = replace(fields.get("recipe", TrainRecipe()), **{k: v for k, v in recipe.items()
                                                                        if v is not None})
    prx = {k[len("proxy_"):]: overrides.pop(k) for k in ("proxy_epoch_scale", "proxy_batch_power",
                                                         "proxy_lr_batch_power") if k in overrides}
    if any(v is not None for v in prx.values()):
        base = overrides.get("proxy_recipe") or fields.get("proxy_recipe", RECOMMENDED)
        overrides["proxy_recipe"] = replace(base, **{k: v for k, v in prx.items() if v is not None})

