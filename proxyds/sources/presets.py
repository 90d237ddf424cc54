"""Named datasets: ``proxyds build mnist1d`` resolves to a source plus its columns and space.

``mnist1d`` is the embedded default and needs no download: it is generated locally with
``mnist1d.data.make_dataset`` (never its download path), written once as parquet shards into
the cache directory (``$PROXYDS_CACHE``, default ``~/.cache/proxyds``), and from then on read
through the ``hf:`` reader like any other dataset.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["Preset", "register_preset", "get_preset", "list_presets", "cache_dir", "MNIST1D_ARGS"]


@dataclass(frozen=True)
class Preset:
    """A named dataset: where it lives and how proxyds reads it.

    ``locate(data)`` returns the source spec (``hf:…`` or ``wds:…``) given the user's
    ``--data`` path (None when not given); it raises FileNotFoundError saying how to supply
    the data when it is absent.
    """

    name: str
    description: str
    locate: Callable[[str | None], str]
    space: str
    input_column: str
    label_column: str = "label"
    train_split: str = "train"
    reference_split: str = "test"
    extra: dict = field(default_factory=dict)


_PRESETS: dict[str, Preset] = {}


def register_preset(preset: Preset) -> Preset:
    if preset.name in _PRESETS:
        raise ValueError(f"preset {preset.name!r} is already registered")
    _PRESETS[preset.name] = preset
    return preset


def get_preset(name: str) -> Preset:
    if name not in _PRESETS:
        raise ValueError(f"unknown dataset {name!r}; known presets: {', '.join(list_presets())} "
                         f"(or give a source as hf:PATH or wds:PATTERN)")
    return _PRESETS[name]


def list_presets(pattern: str = "*") -> list[str]:
    return sorted(n for n in _PRESETS if fnmatch.fnmatch(n, pattern))


def cache_dir() -> Path:
    return Path(os.environ.get("PROXYDS_CACHE", Path.home() / ".cache" / "proxyds")).expanduser()


# 50,000 sequences: 40,000 train, 10,000 test; the generator's other defaults.
MNIST1D_ARGS = {"num_samples": 50_000, "train_split": 0.8, "seed": 42}


def _locate_mnist1d(data: str | None, args: dict | None = None) -> str:
    if data is not None:
        return f"hf:{data}"
    return f"hf:{materialize_mnist1d(args or MNIST1D_ARGS)}"


def materialize_mnist1d(overrides: dict, root: Path | None = None, rows_per_shard: int = 10_000) -> Path:
    """Generate MNIST-1D with ``overrides`` of the generator's arguments and cache it as parquet.

    Returns the dataset directory (``data/train-*.parquet``, ``data/test-*.parquet``); a second
    call with the same arguments reuses it.
    """
    import mnist1d.data
    from datasets import ClassLabel, Features, List, Value

    from proxyds.sinks import ParquetShardWriter, atomic_output_dir

    args = mnist1d.data.get_dataset_args(as_dict=True)
    unknown = set(overrides) - set(args)
    if unknown:
        raise ValueError(f"unknown mnist1d arguments {sorted(unknown)}; known: {', '.join(sorted(args))}")
    args.update(overrides)
    args.pop("url")  # never the download path
    tag = hashlib.sha256(json.dumps(args, sort_keys=True).encode()).hexdigest()[:12]
    out = (root or cache_dir()) / f"mnist1d-{tag}"
    if (out / "proxyds-cache.json").exists():
        return out
    data = _make_mnist1d(args)
    features = Features({"x": List(Value("float32"), length=args["final_seq_length"]),
                         "label": ClassLabel(names=[str(i) for i in range(10)])})
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output_dir(out, overwrite=True) as tmp:
        for split, x, y in (("train", data["x"], data["y"]), ("test", data["x_test"], data["y_test"])):
            with ParquetShardWriter(tmp / "data", split, features, rows_per_shard=rows_per_shard) as w:
                for xi, yi in zip(x.astype(np.float32), y):
                    w.write({"x": xi.tolist(), "label": int(yi)})
        (tmp / "proxyds-cache.json").write_text(json.dumps({"mnist1d_args": args}, indent=1))
    return out


def _make_mnist1d(args: dict) -> dict:
    """mnist1d.make_dataset, leaving the global random state as it found it."""
    import mnist1d.data
    from mnist1d.utils import ObjectView

    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        return mnist1d.data.make_dataset(ObjectView(dict(args, url="")))
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)


register_preset(Preset(
    name="mnist1d",
    description="MNIST-1D (Greydanus 2020), generated locally: 40,000 train / 10,000 test sequences of length 40, 10 classes",
    locate=_locate_mnist1d,
    space="resnet1d",
    input_column="x",
))
