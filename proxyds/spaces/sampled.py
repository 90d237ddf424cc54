"""Search spaces drawn with a seed from the ``cnn1d`` and ``mlp1d`` design grids.

``cnn1d`` and ``mlp1d`` are 24 configs each, frozen once; a default tuned on them may only fit
them. :func:`sample_space` draws ``n`` other configs from the same grid of choices (every
factor's levels, a MACs cap) with a seeded generator, so the selector benchmark suite
(:mod:`proxyds.harness.suite`) has spaces nothing was tuned on. ``cnn1d-s1`` … ``cnn1d-s4`` and
``mlp1d-s1`` … ``mlp1d-s4`` are registered (8 configs each, seed = the number); any other draw
is ``sample_space(kind, seed, n)``.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch

from . import cnn1d, mlp1d
from .registry import SearchSpace, count_macs, params_space, register_space

__all__ = ["GRIDS", "sample_space", "SAMPLED_SEEDS", "SAMPLED_SIZE"]

#: Every level of every factor of the two grids (see cnn1d.py and mlp1d.py for the meanings),
#: and the MACs cap per example a drawn config must respect.
GRIDS: dict[str, dict] = {
    "cnn1d": dict(levels={"width": (8, 16, 24), "depth": (1, 2, 3), "kernel": (3, 5, 9), "down": (0, 1, 2, 3),
                          "norm": (0, 1), "residual": (0, 1), "act": (0, 1, 2), "dropout": (0, 30), "head": (0, 1, 2)},
                  max_macs=600_000),
    "mlp1d": dict(levels={"width": (32, 64, 128, 256), "depth": (1, 2, 3, 4), "act": (0, 1, 2), "norm": (0, 1, 2),
                          "dropout": (0, 20), "residual": (0, 1)},
                  max_macs=600_000),
}
_MODULES = {"cnn1d": (cnn1d, cnn1d.CNN1D), "mlp1d": (mlp1d, mlp1d.MLP1D)}
SAMPLED_SEEDS = (1, 2, 3, 4)
SAMPLED_SIZE = 8


def sample_space(kind: str, seed: int, n: int = SAMPLED_SIZE) -> SearchSpace:
    """``n`` distinct configs of the ``kind`` grid (``cnn1d`` or ``mlp1d``) drawn uniformly with
    ``seed`` among those under the grid's MACs cap, none of them one of the frozen 24; the space
    is named ``{kind}-s{seed}`` (``-n{n}`` appended when ``n`` is not the default)."""
    if kind not in GRIDS:
        raise ValueError(f"kind must be one of {sorted(GRIDS)} (got {kind!r})")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer (got {seed!r})")
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be an integer >= 2: a ranking needs two configs (got {n!r})")
    grid, (module, model) = GRIDS[kind], _MODULES[kind]
    fields = tuple(grid["levels"])
    frozen = {tuple(v) for v in (module.CNN1D_CONFIGS if kind == "cnn1d" else module.MLP1D_CONFIGS)}
    combos = [c for c in itertools.product(*grid["levels"].values()) if c not in frozen]
    if kind == "mlp1d":  # residual is a no-op on one hidden layer: keep the plain spelling only
        combos = [c for c in combos if not (c[1] == 1 and c[5] == 1)]
    order = np.random.default_rng(seed).permutation(len(combos))
    name = f"{kind}-s{seed}" + ("" if n == SAMPLED_SIZE else f"-n{n}")

    drawn = []
    for i in order:
        params = dict(zip(fields, combos[i]))
        with torch.random.fork_rng(devices=[]):  # counting MACs never shifts the caller's RNG
            macs = count_macs(model(params, 10), (1, 40))
        if macs <= grid["max_macs"]:
            drawn.append(params)
            if len(drawn) == n:
                break
    return params_space(name, (1, 40), drawn, module.config_name, model,
                        description=f"{n} configs of the {kind} grid drawn with seed {seed} (at most "
                                    f"{grid['max_macs']:,} MACs, none of {kind}'s frozen 24)")


def _register(kind: str, seed: int) -> None:
    register_space(f"{kind}-s{seed}")(lambda: sample_space(kind, seed))


for _kind in GRIDS:
    for _seed in SAMPLED_SEEDS:
        _register(_kind, _seed)
