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

from proxyds.config import PRECISIONS, PROBE_HPARAMS
from proxyds.progress import progress

__all__ = ["PROBE_HPARAMS", "OPTIMIZERS", "train_probe", "BatchScores", "score_batch", "label_prob_entropy",
           "pick_device", "resolve_precision", "autocast", "place_model", "to_device"]

log = logging.getLogger(__name__)


def pick_device(device: str) -> torch.device:
    """``auto`` -> CUDA if present, else CPU; anything else must be a valid torch device."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"device {device!r} is not a torch device (use auto, cpu, cuda, cuda:N)") from err
    if dev.type == "cuda" and not (torch.cuda.is_available() and (dev.index or 0) < torch.cuda.device_count()):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        there = (f"no CUDA device (torch {torch.__version__}"
                 + (", built without CUDA)" if torch.version.cuda is None else ")") if count == 0
                 else f"{count} CUDA device{'s' * (count > 1)}")
        available = ", ".join(["cpu", *(f"cuda:{i}" for i in range(count))])
        raise ValueError(f"device {device!r} asked for, but this machine has {there}; available: {available} "
                         f"(use --device cpu, or auto for a GPU when there is one)")
    return dev


def _native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes in bfloat16 natively (what ``torch.cuda.is_bf16_supported(
    including_emulation=False)`` says of the current device, asked of this one): ROCm, or compute
    capability 8.0+ (Ampere, Hopper, ...). Older GPUs only emulate it, slower than fp32."""
    return bool(torch.version.hip) or torch.cuda.get_device_capability(device)[0] >= 8


def resolve_precision(device: torch.device, precision: str) -> str:
    """The arithmetic the probes run in on ``device`` for the setting ``precision``: ``fp32`` or
    ``bf16``. ``auto`` is bf16 on a CUDA device with native bfloat16, else fp32, so a build on the
    CPU computes exactly as without this setting; ``bf16`` anywhere else is an error."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)} (got {precision!r})")
    if precision == "fp32":
        return "fp32"
    native = device.type == "cuda" and _native_bf16(device)
    if precision == "bf16" and not native:
        what = "has no native bfloat16 (compute capability < 8.0)" if device.type == "cuda" else "is not a CUDA device"
        raise ValueError(f"precision bf16 needs a CUDA device with native bfloat16 (compute capability 8.0+, e.g. "
                         f"A100, H100); device {str(device)!r} {what}: use --precision auto or fp32")
    return "bf16" if native else "fp32"


def autocast(device: torch.device, precision: str):
    """The context a forward pass runs in: bf16 autocast on CUDA for ``precision`` bf16 (matmuls
    and convolutions in bfloat16; softmax, losses and reductions stay float32), else nothing."""
    if precision == "bf16" and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return nullcontext()


def place_model(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``model`` moved to ``device``; on CUDA its 4-D weights (2-D convolutions) in channels_last,
    the layout tensor cores read fastest. A DistributedDataParallel model was placed before wrapping."""
    if isinstance(model, DistributedDataParallel):
        return model
    if device.type == "cuda":
        return model.to(device, memory_format=torch.channels_last)
    return model.to(device)


def to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A batch on ``device``, copied asynchronously (from pinned memory when the loader pins it);
    on CUDA an image batch (B, C, H, W) in channels_last, as :func:`place_model` lays out the weights."""
    if device.type == "cuda" and x.dim() == 4:
        return x.to(device, memory_format=torch.channels_last, non_blocking=True)
    return x.to(device, non_blocking=True)


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
                device: torch.device, desc: str = "probe", optimizer: str = "adamw", precision: str = "fp32"
                ) -> list[float]:
    """Train ``model`` in place; returns the mean loss of each epoch. The one trainer of proxyds:
    the build's probes and the harness's full-data and proxy runs all train here.

    ``epoch_batches(epoch)`` yields that epoch's shuffled ``(x, y)`` batches;
    ``steps_per_epoch`` sets the length of the schedule: a linear warm-up over
    ``warmup_steps``, then a cosine to 0. ``optimizer`` is a key of :data:`OPTIMIZERS`.
    ``precision`` (:func:`resolve_precision`) sets the forward passes' arithmetic; the weights,
    gradients and optimiser state stay float32.
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)} (got {optimizer!r})")
    amp = resolve_precision(device, precision)
    model = place_model(model, device).train()
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
        history = _epochs(model, epoch_batches, opt, sched, epochs, bar, desc, device, amp)
    bar.close()
    model.eval()
    return history


def _epochs(model, epoch_batches, opt, sched, epochs: int, bar, desc: str, device, precision: str) -> list[float]:
    history = []
    for epoch in range(epochs):
        losses = []
        for x, y in epoch_batches(epoch):
            x, y = to_device(x, device), y.to(device, non_blocking=True)
            with autocast(device, precision):  # the forward pass and the loss; backward outside, as torch.amp says
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
                labels: np.ndarray | None = None, precision: str = "fp32") -> BatchScores:
    """Every probe's outputs on one batch, in one forward pass per probe (see :class:`BatchScores`),
    run in ``precision`` (a resolved one: fp32 or bf16); the outputs are float32 whatever it is.
    Models must already be on ``device`` (:func:`place_model`) in eval mode."""
    x = to_device(x, device)
    preds, feats, true_prob, entropy = [], None, [], []
    for j, m in enumerate(models):
        with autocast(device, precision):
            f = m.forward_features(x)
            logits = m.forward_head(f)
        logits = logits.float()
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
