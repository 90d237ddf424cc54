"""How to train on a proxy, given how one trains on the full data.

A proxy of ``ratio`` with the full data's epochs and batch size gets ``ratio`` times the
optimiser steps: at 5% of 8,000 examples and batch 128 that is 4 steps an epoch, and the
ranking it gives mostly measures how fast a config starts to learn. A :class:`ProxyRecipe`
says how the full-data recipe changes for a proxy:

* ``epoch_scale`` — proxy epochs = ``round(full epochs * epoch_scale)`` (more passes cost
  more compute);
* ``batch_power`` — proxy batch = ``round(full batch * ratio ** batch_power)``: 0 keeps the
  batch, 0.5 shrinks it by ``sqrt(ratio)`` (``1/sqrt(ratio)`` times the steps for the same
  compute), 1 keeps the full data's steps per epoch;
* ``lr_batch_power`` — the learning rate follows the batch as ``lr * (b_proxy / b_full) **
  lr_batch_power`` (0.5 is the square-root rule for Adam).

:data:`RECOMMENDED` is the recipe measured best by ``proxyds evaluate`` (docs/benchmarks.md);
``proxyds build`` writes it into proxy.json and prints it, ``proxyds evaluate`` uses it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

__all__ = ["BATCH_BY_RATIO", "RECIPE_EXAMPLE", "RECOMMENDED", "SAME", "ProxyRecipe"]


@dataclass(frozen=True)
class ProxyRecipe:
    """A rule from (full-data epochs, batch size, lr) and the proxy's ratio to the proxy's."""

    epoch_scale: float = 1.0
    batch_power: float = 0.0
    lr_batch_power: float = 0.5
    min_batch: int = 16

    def __post_init__(self):
        for name in ("epoch_scale", "batch_power", "lr_batch_power"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"{name} must be a finite number (got {v!r})")
        if not self.epoch_scale > 0:
            raise ValueError(f"epoch_scale must be > 0 (got {self.epoch_scale!r})")
        if not 0 <= self.batch_power <= 1:
            raise ValueError(f"batch_power must be in [0, 1] (got {self.batch_power!r})")
        if isinstance(self.min_batch, bool) or not isinstance(self.min_batch, int) or self.min_batch < 2:
            raise ValueError(f"min_batch must be an integer >= 2 (got {self.min_batch!r})")

    def apply(self, epochs: int, batch_size: int, lr: float, ratio: float) -> tuple[int, int, float]:
        """(epochs, batch_size, lr) for a proxy of ``ratio`` of the data trained with the full
        data's ``(epochs, batch_size, lr)``."""
        if not 0 < ratio <= 1:
            raise ValueError(f"ratio must be in (0, 1] (got {ratio!r})")
        proxy_epochs = max(1, round(epochs * self.epoch_scale))
        proxy_batch = min(batch_size, max(self.min_batch, round(batch_size * ratio ** self.batch_power)))
        proxy_lr = lr * (proxy_batch / batch_size) ** self.lr_batch_power
        return proxy_epochs, proxy_batch, proxy_lr

    def describe(self, epochs: int | None = None, batch_size: int | None = None, lr: float | None = None,
                 ratio: float | None = None) -> str:
        """One line a user can follow; with the full recipe and ratio given, the numbers too."""
        parts = [f"epochs x {self.epoch_scale:g}"]
        parts.append("same batch size" if self.batch_power == 0 else
                     f"batch size x ratio^{self.batch_power:g} (at least {self.min_batch})")
        if self.batch_power:
            parts.append(f"learning rate x (batch ratio)^{self.lr_batch_power:g}")
        text = "train the proxy with the full data's recipe, " + ", ".join(parts)
        if None not in (epochs, batch_size, lr, ratio):
            e, b, l = self.apply(epochs, batch_size, lr, ratio)
            text += f": {epochs} epochs, batch {batch_size}, lr {lr:g} on the full data -> {e} epochs, " \
                    f"batch {b}, lr {l:.3g} on this proxy"
        return text

    def to_json(self) -> dict:
        return asdict(self)


#: (epochs, batch size, lr) of a full-data recipe, to show what a recipe does in numbers.
RECIPE_EXAMPLE = (10, 128, 2e-3)

#: The full data's recipe unchanged (epochs, batch size and lr alike).
SAME = ProxyRecipe()

#: The full data's epochs, so the same compute per example, with the batch shrunk by the ratio (at
#: least 16) so the proxy also gets the full run's optimiser steps, and the learning rate scaled by
#: the square root of the batch ratio: version 0.1's recommendation, which keeps most of the full
#: run's optimiser steps (0.8 of them at 10%).
BATCH_BY_RATIO = ProxyRecipe(epoch_scale=1.0, batch_power=1.0, lr_batch_power=0.5, min_batch=16)

#: Chosen on the selector suite's tuning half (``proxyds evaluate --suite selectors``,
#: docs/benchmarks-selectors.md): the best ranking among the measured recipes whose 10% proxy costs
#: at most a fifth of the full run in optimiser steps and in FLOPs. The full data's epochs, the
#: batch shrunk by ratio^0.25 (a 10% proxy: batch 128 -> 72, about 0.19 of the full run's steps
#: and 0.1 of its FLOPs), the learning rate scaled by the square root of the batch ratio.
RECOMMENDED = ProxyRecipe(epoch_scale=1.0, batch_power=0.25, lr_batch_power=0.5, min_batch=16)
