"""Probe checkpoints as the ecosystem saves them, loaded into a space's model.

:func:`load_probe` reads a state dict saved with ``torch.save`` (loaded with
``weights_only=True``: tensors and plain containers, never an arbitrary pickled object) or a
``.safetensors`` file, takes it out of the usual wrappers, and loads it strictly:

* wrappers: ``{"state_dict": ...}`` (timm's ``train.py``, Lightning) and ``{"model": ...}``
  (torchvision's reference scripts, DeiT), checked in that order;
* key prefixes: ``module.`` (DistributedDataParallel), ``model.`` (a module kept as an
  attribute), ``_orig_mod.`` (``torch.compile``), stripped when every key has one and the
  model's keys do not.

The spaces keep the key names of the models they wrap, so ``torchvision.models.resnet50()``'s
and ``timm.create_model("resnet50")``'s state dicts (the same names) load into the
``torchvision_resnet`` space, and any timm model's into the ``timm:`` space. A checkpoint that
does not fit raises :class:`BadInput` naming the file and the first missing, unexpected and
mis-shaped keys; one whose classifier is for another number of classes (an ImageNet head on
10-class data) is refused: the probes' predictions on the reference split define the paper's
cases, so a head for other classes cannot be used, and replacing it would be a different
probe.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from proxyds.errors import BadInput

__all__ = ["load_probe", "read_state_dict"]

_WRAPPERS = ("state_dict", "model")
_PREFIXES = ("module.", "model.", "_orig_mod.")
_SHOWN = 5  # keys named per kind of mismatch


def read_state_dict(path: Path) -> object:
    """What a ``torch.save`` (weights only) or ``.safetensors`` file holds, out of its wrappers."""
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file  # deferred: installed with timm / huggingface
        except ImportError:
            raise BadInput(f"checkpoint {path}: reading .safetensors needs the safetensors package "
                           f"(pip install safetensors)") from None
        return load_file(str(path), device="cpu")
    state = torch.load(path, map_location="cpu", weights_only=True)
    for wrapper in _WRAPPERS:
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            return state[wrapper]
    return state


def _is_state_dict(state: object) -> bool:
    return isinstance(state, dict) and all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                           for k, v in state.items())


def _strip_prefixes(state: dict, model_keys: set[str]) -> dict:
    """``state`` with wrapper prefixes taken off its keys while every key has one and the model has none."""
    changed = True
    while changed and state:
        changed = False
        for prefix in _PREFIXES:
            if all(k.startswith(prefix) for k in state) and not any(k.startswith(prefix) for k in model_keys):
                state = {k[len(prefix):]: v for k, v in state.items()}
                changed = True
    return state


def _head_mismatch(model: nn.Module, key: str, have: tuple, want: tuple) -> str | None:
    """A sentence if ``key`` is the classifier's (the last Linear layer's) weight or bias and the
    shapes differ only in the number of classes."""
    linears = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if linears and key.rpartition(".")[0] == linears[-1] and have[1:] == want[1:] and have[:1] != want[:1]:
        return (f"its classifier {key} is for {have[0]} classes, the data has {want[0]}: a probe must predict "
                f"the data's classes (its predictions on the reference split define the cases), so fine-tune "
                f"the checkpoint on this data first (e.g. timm's train.py --num-classes {want[0]}) or leave "
                f"out --probe and let the build train it")
    return None


def _mismatch(model: nn.Module, state: dict) -> str:
    """What differs between ``state`` and the model's state dict: first keys of each kind."""
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    have = {k: tuple(v.shape) for k, v in state.items()}
    # BatchNorm fills in a missing num_batches_tracked itself (older torchvision files lack it).
    missing = [k for k in want if k not in have and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in have if k not in want]
    shapes = [k for k in have if k in want and have[k] != want[k]]
    for key in shapes:
        head = _head_mismatch(model, key, have[key], want[key])
        if head:
            return head
    parts = []
    for label, keys in (("missing", missing), ("unexpected", unexpected)):
        if keys:
            more = f" (+{len(keys) - _SHOWN} more)" if len(keys) > _SHOWN else ""
            parts.append(f"{len(keys)} {label} keys: {', '.join(keys[:_SHOWN])}{more}")
    if shapes:
        shown = ", ".join(f"{k} {list(have[k])} vs {list(want[k])}" for k in shapes[:_SHOWN])
        parts.append(f"{len(shapes)} keys of another shape (file vs model): {shown}")
    return "; ".join(parts)


def load_probe(model: nn.Module, path: Path, what: str) -> None:
    """Load the checkpoint at ``path`` into ``model`` (``what``: the probe, for messages), strictly.

    Raises :class:`BadInput` naming the file when it cannot be read or does not fit the model.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what}: checkpoint {path} does not exist")
    try:
        state = read_state_dict(path)
    except BadInput:
        raise
    except Exception as err:  # noqa: BLE001 - unpickling and format errors come as many types
        raise BadInput(f"checkpoint {path} does not fit the {what}: it cannot be read as weights only "
                       f"({str(err).splitlines()[0][:300]}); save the state dict alone, "
                       f"torch.save(model.state_dict(), path)") from err
    if not _is_state_dict(state):
        raise BadInput(f"checkpoint {path} does not fit the {what}: it holds a {type(state).__name__}, not a "
                       f"state dict of tensors (nor one under 'state_dict' or 'model'); save "
                       f"model.state_dict() with torch.save")
    state = _strip_prefixes(state, set(model.state_dict()))
    problem = _mismatch(model, state)
    if problem:
        raise BadInput(f"checkpoint {path} does not fit the {what}: {problem}")
    model.load_state_dict(state)
