"""The mlp1d space (the second ranking benchmark's): frozen, readable, and built as named."""

from __future__ import annotations

from collections import Counter

import torch
from torch import nn

from proxyds.spaces import get_space
from proxyds.spaces.mlp1d import MLP1D_CONFIGS


def test_24_distinct_configs_with_balanced_levels():
    space = get_space("mlp1d")
    assert len(space.configs) == 24 == len({c.name for c in space.configs}) == len(set(MLP1D_CONFIGS))
    widths = Counter(c.params["width"] for c in space.configs)
    depths = Counter(c.params["depth"] for c in space.configs)
    assert set(widths.values()) == {6} and set(depths.values()) == {6}
    assert all(c.params["residual"] == 0 for c in space.configs if c.params["depth"] == 1)


def test_a_config_builds_what_its_name_says():
    space = get_space("mlp1d")
    model = space.build("w64-d3-tanh-ln-p0-plain", 10)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(40, 64), (64, 64), (64, 64), (64, 10)]
    assert sum(isinstance(m, nn.LayerNorm) for m in model.modules()) == 3
    assert sum(isinstance(m, nn.Tanh) for m in model.modules()) == 3
    assert model(torch.randn(5, 1, 40)).shape == (5, 10)


def test_residual_layers_add_their_input():
    space = get_space("mlp1d")
    model = space.build("w128-d2-relu-none-p20-res", 10).eval()
    first, second = model.layers
    assert not first.residual and second.residual
    h = torch.randn(3, 128)
    torch.testing.assert_close(second(h), torch.relu(second.linear(h) + h))
