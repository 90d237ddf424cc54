"""Lossless conversion between ``datasets`` rows and WebDataset fields.

Any input can be written in either output format: an ``hf:`` row becomes tar fields with
the extensions every WebDataset reader decodes (``cls``, ``jpg``, ``x.npy``, ``x.txt``,
``x.json``), and a ``wds:`` example becomes a row plus the ``Features`` that describe it.
Image bytes always travel unchanged; nothing is re-encoded, and nothing is pickled.

Mapping (row -> fields; ``wds_fields_to_row`` is the inverse):

==========================================  =============================
label column                                ``cls`` (ASCII decimal)
``Image`` column ``{"bytes", "path"}``      ``jpg``/``png``/... (``<col>.<ext>`` if several)
numeric list / ``ArrayND`` column ``col``   ``col.npy`` (feature's dtype)
string column ``col``                       ``col.txt`` (UTF-8)
int / float / bool column ``col``           ``col.json``
==========================================  =============================

A ``None`` value is left out of the fields (WebDataset's way of saying "missing"); a
``None`` label is an error.
"""

from __future__ import annotations

import io
import json
import operator
import os
from collections.abc import Mapping, Sequence
from typing import Any

import datasets
import numpy as np

__all__ = ["row_to_wds_fields", "wds_fields_to_row", "wds_features"]

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff")
_NUMERIC = {
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64",
}  # fmt: skip
_STRINGS = {"string", "large_string"}
_LISTS = tuple(c for c in (getattr(datasets, "List", None), datasets.Sequence, getattr(datasets, "LargeList", None)) if c)
_ARRAYS = (datasets.Array2D, datasets.Array3D, datasets.Array4D, datasets.Array5D)
_MAGIC = (
    (b"\xff\xd8\xff", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"II*\x00", "tif"),
    (b"MM\x00*", "tif"),
    (b"BM", "bmp"),
)


def row_to_wds_fields(
    row: Mapping[str, Any], features: datasets.Features, label_column: str, *, image_ext: str | None = None
) -> dict[str, bytes]:
    """Turn one ``datasets`` row into WebDataset fields (extension -> bytes); see module doc.

    An image's field is named after its format, read from the path's suffix or else the
    bytes, so a split whose images mix formats gets mixed field names, which
    ``load_dataset("webdataset")`` rejects (it wants the same fields in every example).
    ``image_ext`` (e.g. the first example's) names every image field alike; the bytes stay
    unchanged and decoders read the format from the bytes, as they do for any WebDataset.
    """
    if label_column not in features:
        raise ValueError(f"label column {label_column!r} is not among the features {list(features)}")
    missing = [c for c in features if c not in row]
    extra = [c for c in row if c not in features]
    if missing or extra:
        raise ValueError(f"row does not match the features: missing columns {missing}, unexpected {extra}")
    if image_ext is not None and image_ext.lower() not in IMAGE_EXTENSIONS:
        raise ValueError(f"image_ext {image_ext!r} is not an image extension; use one of {IMAGE_EXTENSIONS}")
    images = [c for c, f in features.items() if isinstance(f, datasets.Image) and c != label_column]
    fields: dict[str, bytes] = {}
    for col, feature in features.items():
        _check_column(col)
        value = row[col]
        if col == label_column:
            fields["cls"] = str(_as_int(value, col)).encode("ascii")
            continue
        kind, dtype = _kind(feature, col)
        if value is None:
            continue
        if kind == "image":
            data, ext = _image_bytes(value, col)
            ext = image_ext.lower() if image_ext is not None else ext
            name = ext if len(images) == 1 else f"{col}.{ext}"
        elif kind == "npy":
            data, name = _npy_bytes(value, dtype, col), f"{col}.npy"
        elif kind == "txt":
            data, name = str(value).encode("utf-8"), f"{col}.txt"
        else:
            data, name = json.dumps(value.item() if isinstance(value, np.generic) else value).encode(), f"{col}.json"
        if name in fields:
            raise ValueError(f"column {col!r} maps to field {name!r}, which another column already uses")
        fields[name] = data
    return fields


def wds_fields_to_row(fields: Mapping[str, bytes], label_field: str = "cls") -> dict[str, Any]:
    """Turn WebDataset fields into a ``datasets`` row (the inverse of ``row_to_wds_fields``).

    Columns: ``label`` (int), ``image`` (``{"bytes", "path"}``; ``<col>.<ext>`` gives
    column ``col``), ``<col>`` from ``<col>.npy`` (nested lists), ``.txt`` (str) and
    ``.json`` (JSON value); bare ``npy``/``txt``/``json`` give columns of those names.
    Metadata entries (``__key__``, ``__url__``) are ignored; ``__key__`` names the image path.
    """
    key = fields.get("__key__") or "x"
    row: dict[str, Any] = {}
    for field, column, kind in _plan(fields, label_field):
        data = bytes(fields[field])
        if kind == "label":
            row[column] = _parse_label(data, field)
        elif kind == "image":
            row[column] = {"bytes": data, "path": f"{key}.{field.rsplit('.', 1)[-1].lower()}"}
        elif kind == "npy":
            row[column] = _load_npy(data, field).tolist()
        elif kind == "txt":
            row[column] = data.decode("utf-8")
        else:
            row[column] = json.loads(data)
    return row


def wds_features(
    fields: Mapping[str, bytes], class_names: Sequence[str], label_field: str = "cls"
) -> datasets.Features:
    """The ``Features`` of ``wds_fields_to_row(fields)``, inferred from one example.

    ``label`` is a ``ClassLabel(names=class_names)``, images ``Image()``, arrays nested
    ``List(Value(dtype))`` (a 0-d array is a ``Value``), text ``Value("string")``, and JSON
    scalars ``Value`` of int64/float64/bool/string (objects and lists: ``Json()``).
    """
    out: dict[str, Any] = {}
    for field, column, kind in _plan(fields, label_field):
        data = bytes(fields[field])
        if kind == "label":
            out[column] = datasets.ClassLabel(names=list(class_names))
        elif kind == "image":
            out[column] = datasets.Image()
        elif kind == "npy":
            arr = _load_npy(data, field)
            if arr.dtype.name not in _NUMERIC:
                raise ValueError(f"field {field!r} holds a {arr.dtype} array; only bool/int/uint/float are supported")
            feature: Any = datasets.Value(arr.dtype.name)
            for _ in range(arr.ndim):
                feature = _LISTS[0](feature)
            out[column] = feature
        elif kind == "txt":
            out[column] = datasets.Value("string")
        else:
            out[column] = _json_feature(json.loads(data), field)
    return datasets.Features(out)


def _plan(fields: Mapping[str, bytes], label_field: str) -> list[tuple[str, str, str]]:
    """(field, column, kind) for every data field, label first, then in sorted field order."""
    if label_field not in fields:
        raise ValueError(f"label field {label_field!r} is missing; the example has fields {sorted(fields)}")
    plan = [(label_field, "label", "label")]
    columns = {"label": label_field}
    for field in sorted(fields):
        if field == label_field or field.startswith("__"):
            continue
        stem, _, ext = field.rpartition(".")
        ext = ext.lower()
        if ext in IMAGE_EXTENSIONS:
            column, kind = stem or "image", "image"
        elif ext in ("npy", "txt", "json"):
            column, kind = stem or ext, ext
        else:
            raise ValueError(
                f"field {field!r} has no row form; supported: {label_field!r}, images "
                f"({', '.join(IMAGE_EXTENSIONS)}), and [<col>.]npy / txt / json"
            )
        if column in columns:
            raise ValueError(f"fields {columns[column]!r} and {field!r} both map to column {column!r}")
        columns[column] = field
        plan.append((field, column, kind))
    return plan


def _kind(feature: Any, col: str) -> tuple[str, str | None]:
    """How a column travels: ("image"|"npy"|"txt"|"json", npy dtype); ValueError if it cannot."""
    if isinstance(feature, datasets.Image):
        return "image", None
    if (dtype := _array_dtype(feature)) is not None:
        return "npy", dtype
    if isinstance(feature, datasets.Value) and feature.dtype in _STRINGS:
        return "txt", None
    if isinstance(feature, datasets.ClassLabel) or (isinstance(feature, datasets.Value) and feature.dtype in _NUMERIC):
        return "json", None
    raise ValueError(
        f"column {col!r} has feature type {feature!r}, which has no WebDataset form; supported: "
        "the label column, Image, numeric lists/arrays, strings, int/float/bool scalars"
    )


def _check_column(col: Any) -> None:
    if not isinstance(col, str) or not col or "." in col or "/" in col or "\x00" in col:
        raise ValueError(
            f"column name {col!r} cannot name a WebDataset field: it must be non-empty without '.', '/' or NUL"
        )


def _as_int(value: Any, col: str) -> int:
    try:
        if isinstance(value, bool):
            raise TypeError
        return operator.index(value)
    except TypeError:
        raise ValueError(f"label column {col!r} must hold an int, got {value!r}") from None


def _parse_label(data: bytes, field: str) -> int:
    try:
        return int(data.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        raise ValueError(f"label field {field!r} must be an ASCII decimal int, got {data[:32]!r}") from None


def _array_dtype(feature: Any) -> str | None:
    """The numeric dtype of a (nested) list or ArrayND feature, else None."""
    if isinstance(feature, _ARRAYS):
        return feature.dtype if feature.dtype in _NUMERIC else None
    if isinstance(feature, _LISTS):
        inner = getattr(feature, "feature", None)
        if isinstance(inner, datasets.Value):
            return inner.dtype if inner.dtype in _NUMERIC else None
        if isinstance(inner, datasets.ClassLabel):
            return "int64"
        return _array_dtype(inner)
    return None


def _npy_bytes(value: Any, dtype: str, col: str) -> bytes:
    try:
        arr = np.asarray(value, dtype=dtype)
    except (ValueError, TypeError, OverflowError) as e:
        raise ValueError(f"column {col!r}: cannot store the value as a {dtype} array ({e})") from None
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def _load_npy(data: bytes, field: str) -> np.ndarray:
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as e:
        raise ValueError(f"field {field!r} is not a plain .npy array ({e})") from None


def _image_bytes(value: Any, col: str) -> tuple[bytes, str]:
    """Original image bytes and their extension; reads a local file when only a path is given."""
    if not isinstance(value, Mapping):
        raise ValueError(
            f"image column {col!r} holds a decoded {type(value).__name__}; read it with "
            "Image(decode=False) so the original bytes are written"
        )
    data, path = value.get("bytes"), value.get("path")
    if data is None and path and os.path.isfile(path):
        with open(path, "rb") as f:
            data = f.read()
    if data is None:
        raise ValueError(f"image column {col!r}: no bytes and no readable local file (path={path!r})")
    ext = os.path.splitext(path)[1][1:].lower() if path else ""
    ext = "jpg" if ext == "jpeg" else ext
    if ext not in IMAGE_EXTENSIONS:
        ext = _sniff_image(bytes(data[:16]), col)
    return bytes(data), ext


def _sniff_image(head: bytes, col: str) -> str:
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    for magic, ext in _MAGIC:
        if head.startswith(magic):
            return ext
    raise ValueError(f"image column {col!r}: cannot tell the image format from the path or the bytes {head!r}")


def _json_feature(value: Any, field: str) -> Any:
    if isinstance(value, bool):
        return datasets.Value("bool")
    if isinstance(value, int):
        return datasets.Value("int64")
    if isinstance(value, float):
        return datasets.Value("float64")
    if isinstance(value, str):
        return datasets.Value("string")
    if hasattr(datasets, "Json"):
        return datasets.Json()
    raise ValueError(f"field {field!r} holds JSON {type(value).__name__}; only int/float/bool/string are supported")
