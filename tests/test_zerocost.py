"""The training-free baselines: SynFlow and NASWOT checked against their definitions on
models small enough to compute them by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from proxyds.harness.zerocost import naswot, synflow, zero_cost_scores

from tiny_spaces import tiny2d


def test_synflow_of_a_linear_chain_is_one_flow_per_layer():
    """Without biases, f(1) = 1^T |W2| |W1| 1 = R and every layer's sum |theta * dR/dtheta| is R."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 7, bias=False), nn.Linear(7, 3, bias=False))
    w1, w2 = (m.weight.detach().double().abs() for m in net)
    flow = float(torch.ones(3, dtype=torch.float64) @ w2 @ w1 @ torch.ones(5, dtype=torch.float64))
    before = [p.detach().clone() for p in net.parameters()]
    assert synflow(net, torch.randn(4, 5)) == pytest.approx(2 * flow, rel=1e-12)
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))  # scored on a copy


def test_naswot_is_the_log_determinant_of_the_agreement_kernel():
    x = torch.randn(6, 9, generator=torch.Generator().manual_seed(1))
    codes = (x.numpy() > 0).astype(np.float64)
    kernel = codes @ codes.T + (1 - codes) @ (1 - codes).T
    net = nn.Sequential(nn.Identity(), nn.ReLU(inplace=True))  # in place: the code is read before it runs
    assert naswot(net, x) == pytest.approx(np.linalg.slogdet(kernel)[1], rel=1e-12)


def test_naswot_separating_nothing_scores_minus_infinity_and_needs_activations():
    assert naswot(nn.Sequential(nn.Linear(3, 8), nn.ReLU()), torch.ones(4, 3)) == float("-inf")
    with pytest.raises(ValueError, match="activation modules"):
        naswot(nn.Linear(3, 2), torch.randn(4, 3))
    with pytest.raises(ValueError, match=r"N >= 2"):
        naswot(nn.Sequential(nn.ReLU()), torch.randn(1, 3))


def test_zero_cost_scores_of_a_space_are_seeded_and_validated():
    space = tiny2d
    x = torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    a = zero_cost_scores(space, space.configs, x, 10, seed=3)
    b = zero_cost_scores(space, space.configs, x, 10, seed=3)
    assert set(a) == {"synflow", "naswot"} and all(len(v) == len(space.configs) for v in a.values())
    assert all(np.array_equal(a[k], b[k]) for k in a) and np.isfinite(a["naswot"]).all()
    assert a["synflow"][1] > a["synflow"][0]  # the wider net carries more flow
    with pytest.raises(ValueError, match="unknown zero-cost score"):
        zero_cost_scores(space, space.configs, x, 10, names=["grasp"])
