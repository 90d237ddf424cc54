"""Turn one example's input value into the float32 array a search space's models take.

Values come as the source stored them: a list / array of numbers (reshaped to the space's
input shape), ``.npy`` bytes (loaded with ``allow_pickle=False``), or an image — a PIL image,
``{"bytes": …, "path": …}`` as ``datasets`` stores it, or raw encoded bytes from a tar —
decoded to RGB (or L for one channel), resized to the input's height and width, scaled to
[-1, 1].
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["decode_input", "check_input", "input_value"]


def input_value(payload: dict[str, Any], column: str, key: str) -> Any:
    """The example's input value, or a KeyError that names the key and the fields it has."""
    if column in payload:
        return payload[column]
    raise KeyError(f"example {key!r} has no input field {column!r}; it has: {', '.join(sorted(payload))} "
                   f"(pass --input-column)")


def decode_input(value: Any, input_shape: Sequence[int], *, name: str = "") -> np.ndarray:
    """A float32 array of ``input_shape`` from one stored value (``name``: its field name)."""
    shape = tuple(input_shape)
    if isinstance(value, dict) and "bytes" in value:
        return _image(_open_image(value["bytes"], value.get("path")), shape)
    if isinstance(value, (bytes, bytearray)):
        if name.endswith("npy"):
            arr = np.load(io.BytesIO(value), allow_pickle=False)
            return _reshape(arr, shape, name)
        return _image(_open_image(value, None), shape)
    if hasattr(value, "convert") and hasattr(value, "size"):  # a PIL image
        return _image(value, shape)
    return _reshape(np.asarray(value, dtype=np.float32), shape, name)


def check_input(value: Any, input_shape: Sequence[int], *, name: str = "") -> None:
    """Raise what :func:`decode_input` would raise for ``value``, cheaply: arrays are decoded
    whole (NaN, inf, wrong size); an image is opened and its pixel data decoded, a JPEG at
    1/8 scale, so a truncated or corrupt file is found in the scan, not during training."""
    shape = tuple(input_shape)
    raw = value.get("bytes") if isinstance(value, dict) and "bytes" in value else value
    is_npy = isinstance(raw, (bytes, bytearray)) and name.endswith("npy")
    if not (isinstance(value, dict) and "bytes" in value) and (is_npy or not isinstance(raw, (bytes, bytearray))):
        decode_input(value, shape, name=name)
        return
    if len(shape) != 3 or shape[0] not in (1, 3):
        raise ValueError(f"an image input needs a (C, H, W) search space with C in (1, 3) (got {shape})")
    img = _open_image(raw, value.get("path") if isinstance(value, dict) else None)
    if getattr(img, "format", None) == "JPEG":
        img.draft("RGB" if shape[0] == 3 else "L", (1, 1))
    img.load()


def _reshape(arr: np.ndarray, shape: tuple[int, ...], name: str) -> np.ndarray:
    arr = np.asarray(arr, dtype=np.float32)
    if arr.size != int(np.prod(shape)):
        raise ValueError(f"input {name!r} has {arr.size} values (shape {arr.shape}); the search space expects {shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"input {name!r} contains NaN or infinite values")
    return arr.reshape(shape)


def _open_image(data: bytes | None, path: str | None):
    from PIL import Image

    if data is None:
        if not path:
            raise ValueError("image value has neither bytes nor a path")
        return Image.open(path)
    return Image.open(io.BytesIO(data))


_MEAN, _STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # ImageNet statistics


def _image(img, shape: tuple[int, ...]) -> np.ndarray:
    """The evaluation transform (torchvision ``transforms.v2``): inputs of 64 px and more are
    resized on their shorter side to 256/224 of the target and centre-cropped (the ImageNet
    recipe); smaller ones (CIFAR) are resized to the target. Then scaled and normalised."""
    import torch
    from torchvision.transforms.v2 import functional as TF

    if len(shape) != 3 or shape[0] not in (1, 3):
        raise ValueError(f"an image input needs a (C, H, W) search space with C in (1, 3) (got {shape})")
    c, h, w = shape
    large = min(h, w) >= 64
    short = round(min(h, w) * 256 / 224) if large else min(h, w)
    mode = "RGB" if c == 3 else "L"
    if getattr(img, "format", None) == "JPEG":
        img.draft(mode, (short, short))  # let libjpeg decode at a reduced scale: much less work
    img = img.convert(mode)
    t = torch.from_numpy(np.asarray(img, dtype=np.uint8).reshape(img.size[1], img.size[0], c).copy()).permute(2, 0, 1)
    if large:
        t = TF.center_crop(TF.resize(t, short, antialias=True), [h, w])
    elif (t.shape[1], t.shape[2]) != (h, w):
        t = TF.resize(t, [h, w], antialias=True)
    t = TF.normalize(t.float() / 255.0, _MEAN[:c] if c == 3 else (0.5,), _STD[:c] if c == 3 else (0.5,))
    return t.numpy()
