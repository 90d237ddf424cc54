"""Training-free ("zero-cost") rankings: what a NAS user can have without any data proxy.

A data proxy is worth its cost only if it ranks a space better than scores computed from
an untrained network in one forward (and backward) pass. Two published scores:

- **SynFlow** (Tanaka et al., NeurIPS 2020; used as a NAS proxy by Abdelfattah et al., ICLR
  2021): with every parameter replaced by its absolute value and an input of ones, in
  float64, ``R = sum(f(1))`` and the score is ``sum |theta * dR/dtheta|`` over the weights of
  convolutions and linear layers. BatchNorm runs in eval mode (its fresh statistics make it
  the identity up to eps), as in the reference code's BatchNorm-free copy. No labels, no data.
- **NASWOT** (Mellor et al., ICML 2021, "Neural Architecture Search without Training"): for a
  batch of ``N`` real inputs, each example's binary code is which units enter every
  activation positive; ``K[i, j]`` counts the units where examples ``i`` and ``j`` agree, and
  the score is ``log |det K|``. Networks that separate inputs into distinct linear regions
  score higher. Activations are hooked before they run (in-place ones included); for
  GELU/SiLU/tanh the code is the sign of the pre-activation, as for ReLU.

Higher = predicted better, for both. Scores depend on the initialisation, so each config is
built with the given seed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

__all__ = ["ZERO_COST", "ZERO_COST_BATCH", "synflow", "naswot", "zero_cost_scores"]

#: Train examples NASWOT's kernel is computed over (the paper's batch size).
ZERO_COST_BATCH = 128

_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.ELU, nn.Tanh, nn.Hardswish, nn.Mish)


def _check_batch(x: torch.Tensor, least: int) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() < 2 or len(x) < least:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"need a batch tensor of shape (N >= {least}, ...), got {got}")


def synflow(model: nn.Module, x: torch.Tensor) -> float:
    """SynFlow score of ``model`` (left unchanged: scored on a float64 copy); ``x`` gives the input shape."""
    _check_batch(x, 1)
    net = copy.deepcopy(model).double().eval()  # BatchNorm: fresh running stats, the identity
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    net.zero_grad(set_to_none=True)
    ones = torch.ones((1, *x.shape[1:]), dtype=torch.float64, device=x.device)
    net(ones).sum().backward()
    total = 0.0
    for m in net.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)) and m.weight.grad is not None:
            total += float((m.weight.detach() * m.weight.grad).abs().sum())
    return total


def naswot(model: nn.Module, x: torch.Tensor) -> float:
    """NASWOT score: ``log|det K|`` of the activation-pattern agreement kernel over the batch ``x``."""
    _check_batch(x, 2)
    model, n = copy.deepcopy(model), len(x)  # train-mode BatchNorm would move the caller's running stats
    kernel = torch.zeros((n, n), dtype=torch.float64)

    def hook(_module, inputs) -> None:
        codes = (inputs[0].detach().reshape(n, -1) > 0).to(torch.float64)
        kernel.add_(codes @ codes.T + (1 - codes) @ (1 - codes).T)

    handles = [m.register_forward_pre_hook(hook) for m in model.modules() if isinstance(m, _ACTIVATIONS)]
    if not handles:
        raise ValueError(f"NASWOT needs activation modules ({', '.join(a.__name__ for a in _ACTIVATIONS)}); "
                         f"{type(model).__name__} has none")
    model.train()  # as the reference code: BatchNorm normalises with the batch's statistics
    with torch.no_grad():
        model(x)
    sign, logdet = torch.linalg.slogdet(kernel)
    return float(logdet) if sign > 0 else float("-inf")


ZERO_COST: dict[str, Callable[[nn.Module, torch.Tensor], float]] = {"synflow": synflow, "naswot": naswot}


def zero_cost_scores(space, configs: Sequence, x: torch.Tensor, num_classes: int, *, seed: int = 0,
                     names: Sequence[str] = tuple(ZERO_COST)) -> dict[str, np.ndarray]:
    """Every zero-cost score in ``names`` for every config of ``space``, each built with ``seed``.

    ``x`` is a batch of real train inputs (NASWOT uses it; SynFlow only its shape). Returns
    ``{name: float64 array in config order}``; higher = predicted better.
    """
    unknown = [n for n in names if n not in ZERO_COST]
    if unknown:
        raise ValueError(f"unknown zero-cost score(s) {unknown}; valid: {sorted(ZERO_COST)}")
    _check_batch(x, 2)
    out = {name: np.empty(len(configs), dtype=np.float64) for name in names}
    for i, config in enumerate(configs):
        torch.manual_seed(seed)
        model = space.build(config, num_classes)
        for name in names:
            out[name][i] = ZERO_COST[name](model, x)
    return out
