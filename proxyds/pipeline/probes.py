"""Probe networks: train them, then score data with them in one pass.

The trainer is deliberately short (airbench style): Adam, a cosine learning-rate schedule
over a fixed number of epochs, cross-entropy, seeded. Data arrive as an iterable of
``(x, y)`` batches per epoch, so the same code trains on tensors held in memory or on a
stream of shards. All hyperparameters are in :data:`PROBE_HPARAMS`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch.distributed.algorithms.join import Join
from torch.nn.parallel import DistributedDataParallel

from proxyds.config import PROBE_HPARAMS
from proxyds.progress import progress

__all__ = ["PROBE_HPARAMS", "OPTIMIZERS", "train_probe", "BatchScores", "score_batch", "label_prob_entropy", "pick_device"]

log = logging.getLogger(__name__)



def pick_device(device: str) -> torch.device:
    """``auto`` -> CUDA if present, else CPU; anything else must be a valid torch device."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"device {device!r} is not a torch device (use auto, cpu, cuda, cuda:N)") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but CUDA is not available here (use --device cpu)")
    return dev


#: Optimisers the trainer knows: AdamW (the probes' default), Adam (L2 weight decay; the
#: ranking harness's recipe) and SGD with Nesterov momentum 0.9.
OPTIMIZERS = {
    "adamw": torch.optim.AdamW,
    "adam": torch.optim.Adam,
    "sgd": lambda params, lr, weight_decay: torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True,
                                                            weight_decay=weight_decay),
}


def train_probe(model: torch.nn.Module, epoch_batches: Callable[[int], Iterable[tuple[torch.Tensor, torch.Tensor]]],
                *, steps_per_epoch: int, epochs: int, lr: float, weight_decay: float, warmup_steps: int,
                device: torch.device, desc: str = "probe", optimizer: str = "adamw") -> list[float]:
    """Train ``model`` in place; returns the mean loss of each epoch. The one trainer of proxyds:
    the build's probes and the harness's full-data and proxy runs all train here.

    ``epoch_batches(epoch)`` yields that epoch's shuffled ``(x, y)`` batches;
    ``steps_per_epoch`` sets the length of the schedule: a linear warm-up over
    ``warmup_steps``, then a cosine to 0. ``optimizer`` is a key of :data:`OPTIMIZERS`.
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)} (got {optimizer!r})")
    model.to(device).train()
    opt = OPTIMIZERS[optimizer](model.parameters(), lr=lr, weight_decay=weight_decay)
    total = max(1, steps_per_epoch * epochs)

    def schedule(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup_steps) / max(1, total - warmup_steps))))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    bar = progress(total=total, desc=f"train {desc}", unit="step")
    # Under DDP ranks may hold different numbers of batches: Join lets the ones that finish
    # early shadow the others' all-reduces instead of hanging.
    join = Join([model]) if isinstance(model, DistributedDataParallel) else nullcontext()
    with join:
        history = _epochs(model, epoch_batches, opt, sched, epochs, bar, desc, device)
    bar.close()
    model.eval()
    return history


def _epochs(model, epoch_batches, opt, sched, epochs: int, bar, desc: str, device) -> list[float]:
    history = []
    for epoch in range(epochs):
        losses = []
        for x, y in epoch_batches(epoch):
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
            bar.update(1)
        history.append(float(np.mean(losses)) if losses else float("nan"))
        bar.set_postfix(epoch=epoch + 1, loss=f"{history[-1]:.3f}")
        log.info("%s epoch %d/%d: loss %.4f", desc, epoch + 1, epochs, history[-1])
    return history


def label_prob_entropy(logits: torch.Tensor, labels=None) -> tuple[torch.Tensor | None, torch.Tensor]:
    """Each row's softmax probability of its label (None without ``labels``) and softmax entropy
    in nats (clamped at 0), in the logits' dtype and device."""
    logp = torch.log_softmax(logits, dim=1)
    entropy = (-(logp.exp() * logp).sum(1)).clamp_min(0)
    if labels is None:
        return None, entropy
    y = torch.as_tensor(labels, dtype=torch.long, device=logp.device)
    return logp.gather(1, y[:, None])[:, 0].exp(), entropy


class BatchScores(NamedTuple):
    """One batch through every probe: predicted class (k, B), the feature probe's penultimate
    features (B, D), and with labels every probe's softmax probability of the label and
    softmax entropy in nats ((k, B) float32; None without labels)."""

    preds: np.ndarray
    feats: np.ndarray
    true_prob: np.ndarray | None
    entropy: np.ndarray | None


@torch.inference_mode()
def score_batch(models: list[torch.nn.Module], x: torch.Tensor, *, feature_model: int, device: torch.device,
                labels: np.ndarray | None = None) -> BatchScores:
    """Every probe's outputs on one batch, in one forward pass per probe (see :class:`BatchScores`).
    Models must already be on ``device`` in eval mode."""
    x = x.to(device, non_blocking=True)
    preds, feats, true_prob, entropy = [], None, [], []
    for j, m in enumerate(models):
        f = m.forward_features(x)
        logits = m.forward_head(f).float()
        preds.append(logits.argmax(1))
        if labels is not None:
            tp, ent = label_prob_entropy(logits, labels)
            true_prob.append(tp)
            entropy.append(ent)
        if j == feature_model:
            feats = f.float()
    stacked = (torch.stack(true_prob).cpu().numpy(), torch.stack(entropy).cpu().numpy()) if labels is not None \
        else (None, None)
    return BatchScores(torch.stack(preds).cpu().numpy(), feats.cpu().numpy(), *stacked)
