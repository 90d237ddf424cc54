"""Named datasets: ``proxyds build mnist1d`` resolves to a source plus its columns and space.

``mnist1d`` is the embedded default and needs no download: it is generated locally with
``mnist1d.data.make_dataset`` (never its download path), written once as parquet shards into
the cache directory (``$PROXYDS_CACHE``, default ``~/.cache/proxyds``), and from then on read
through the ``hf:`` reader like any other dataset. ``digits`` is scikit-learn's bundled
handwritten digits (``load_digits``: 1,797 real 8x8 images, no download), written the same way
as an image dataset of PNG bytes with a seeded, class-stratified train/test split.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from proxyds.registry import Registry

__all__ = ["Preset", "Located", "register_preset", "get_preset", "list_presets", "cache_dir", "MNIST1D_ARGS",
           "DIGITS_ARGS", "materialize_digits"]


@dataclass(frozen=True)
class Located:
    """Where a preset's data was found and how to read it."""

    spec: str
    input_column: str
    label_column: str
    train_split: str
    reference_split: str


@dataclass(frozen=True)
class Preset:
    """A named dataset: where it lives and how proxyds reads it.

    ``locate(data)`` returns a :class:`Located` given the user's ``--data`` path (None when
    not given); it raises FileNotFoundError saying how to supply the data when it is absent.
    """

    name: str
    description: str
    locate: Callable[[str | None], Located]
    space: str
    extra: dict = field(default_factory=dict)


_PRESETS: Registry[Preset] = Registry("preset")
list_presets = _PRESETS.names


def register_preset(preset: Preset) -> Preset:
    return _PRESETS.register(preset.name, preset)


def get_preset(name: str) -> Preset:
    if name not in _PRESETS:
        raise ValueError(f"unknown dataset {name!r}; known presets: {', '.join(list_presets())} "
                         f"(or give a source as hf:PATH or wds:PATTERN)")
    return _PRESETS.get(name)


def cache_dir() -> Path:
    return Path(os.environ.get("PROXYDS_CACHE", Path.home() / ".cache" / "proxyds")).expanduser()


# 50,000 sequences: 40,000 train, 10,000 test; the generator's other defaults.
MNIST1D_ARGS = {"num_samples": 50_000, "train_split": 0.8, "seed": 42}


def _locate_mnist1d(data: str | None) -> Located:
    path = data if data is not None else materialize_mnist1d(MNIST1D_ARGS)
    return Located(f"hf:{path}", "x", "label", "train", "test")


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


# scikit-learn's 1,797 digits: 30% of each class held out as the test split, seeded.
DIGITS_ARGS = {"test_fraction": 0.3, "seed": 0}


def _locate_digits(data: str | None) -> Located:
    path = data if data is not None else materialize_digits(DIGITS_ARGS)
    return Located(f"hf:{path}", "image", "label", "train", "test")


def materialize_digits(args: dict, root: Path | None = None, rows_per_shard: int = 500) -> Path:
    """scikit-learn's ``load_digits`` as a HF image dataset (``image``: 8x8 grey PNG bytes,
    ``label``: ClassLabel 0-9), cut into train and test by :func:`stratified_holdout`.

    Returns the dataset directory (``data/train-*.parquet``, ``data/test-*.parquet``); a second
    call with the same arguments reuses it. The 0..16 pixel values are stretched to 0..255.
    """
    import io

    import PIL.Image
    from datasets import ClassLabel, Features, Image
    from sklearn.datasets import load_digits

    from proxyds.sinks import ParquetShardWriter, atomic_output_dir

    unknown = set(args) - set(DIGITS_ARGS)
    if unknown:
        raise ValueError(f"unknown digits arguments {sorted(unknown)}; known: {', '.join(sorted(DIGITS_ARGS))}")
    args = {**DIGITS_ARGS, **args}
    tag = hashlib.sha256(json.dumps(args, sort_keys=True).encode()).hexdigest()[:12]
    out = (root or cache_dir()) / f"digits-{tag}"
    if (out / "proxyds-cache.json").exists():
        return out
    digits = load_digits()
    pixels = np.round(digits.images * (255 / 16)).astype(np.uint8)
    test = stratified_holdout(digits.target, args["test_fraction"], seed=args["seed"])
    order = np.random.default_rng(args["seed"]).permutation(len(pixels))  # classes mixed within every shard
    features = Features({"image": Image(), "label": ClassLabel(names=[str(i) for i in range(10)])})
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output_dir(out, overwrite=True) as tmp:
        for split, rows in (("train", order[~test[order]]), ("test", order[test[order]])):
            with ParquetShardWriter(tmp / "data", split, features, rows_per_shard=rows_per_shard) as w:
                for i in rows:
                    buf = io.BytesIO()
                    PIL.Image.fromarray(pixels[i]).save(buf, format="PNG")
                    w.write({"image": {"bytes": buf.getvalue(), "path": f"digit-{i:04d}.png"},
                             "label": int(digits.target[i])})
        (tmp / "proxyds-cache.json").write_text(json.dumps({"digits_args": args}, indent=1))
    return out


def stratified_holdout(labels, fraction: float, *, seed: int) -> np.ndarray:
    """A bool mask holding out ``round(fraction * n_c)`` of each class's ``n_c`` examples, chosen
    with ``np.random.default_rng(seed)``: every class keeps its share on both sides."""
    labels = np.asarray(labels)
    if not (isinstance(fraction, (int, float)) and 0 < fraction < 1):
        raise ValueError(f"fraction must be in the open interval (0, 1) (got {fraction!r})")
    rng = np.random.default_rng(seed)
    held = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        held[rng.permutation(members)[:round(fraction * len(members))]] = True
    return held


_IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")


def _image_locator(name: str, *, hf: tuple[str, str, str, str], wds_reference: str, example: str):
    """A locate() for an image preset: WebDataset shards (KEY.jpg + KEY.cls) or a HF directory.

    ``hf`` is (image column, label column, train split, reference split) of the HF layout.
    """
    def locate(data: str | None) -> Located:
        if data is None:
            raise FileNotFoundError(
                f"{name} is not downloaded by proxyds; pass --data PATH where PATH is either a directory of "
                f"WebDataset shards (train-*.tar and {wds_reference}-*.tar, or train/ and {wds_reference}/ folders of "
                f".tar files, each example a KEY.jpg image and a KEY.cls class index) or a local HuggingFace dataset "
                f"directory (parquet shards with {hf[0]!r} and {hf[1]!r} columns, splits {hf[2]!r} and {hf[3]!r}), "
                f"e.g. {example}. For a quick try, tools/make_synthetic_imagenet.py writes both layouts.")
        root = Path(data).expanduser()
        if not root.exists():
            raise FileNotFoundError(f"{name}: --data {data} does not exist")
        tars = sorted(root.glob("*.tar")) + sorted(root.glob("*/*.tar"))
        if tars:
            return Located(f"wds:{root}", _wds_image_field(tars[0]), "cls", "train", wds_reference)
        return Located(f"hf:{root}", *hf)
    return locate


def _wds_image_field(tar: Path) -> str:
    """The image extension used by a WebDataset shard (jpg, png, …), from its first members."""
    import tarfile

    with tarfile.open(tar) as tf:
        for i, member in enumerate(tf):
            ext = member.name.rsplit("/", 1)[-1].split(".", 1)[-1].lower()
            if ext in _IMAGE_EXTS:
                return ext
            if i > 20:
                break
    raise ValueError(f"{tar}: no image field ({', '.join(_IMAGE_EXTS)}) among its first members")


register_preset(Preset(
    name="mnist1d",
    description="MNIST-1D (Greydanus 2020), generated locally: 40,000 train / 10,000 test sequences of length 40, 10 classes",
    locate=_locate_mnist1d,
    space="resnet1d",
))
register_preset(Preset(
    name="digits",
    description="scikit-learn's handwritten digits (load_digits), bundled: 1,797 real 8x8 grey images as PNG, "
                "seeded class-stratified split 1,258 train / 539 test, 10 classes",
    locate=_locate_digits,
    space="digits-cnn",
))
register_preset(Preset(
    name="imagenet",
    description="ImageNet-1k from --data (WebDataset .jpg/.cls shards, reference split 'val'; or a HF directory with "
                "image/label, reference split 'validation'); probes resnet18 (lower) and resnet50 (upper)",
    locate=_image_locator("imagenet", hf=("image", "label", "train", "validation"), wds_reference="val",
                          example="--data /data/imagenet-wds"),
    space="torchvision_resnet",
))
register_preset(Preset(
    name="cifar10",
    description="CIFAR-10 from --data (HF layout: img/label, splits train/test; or WebDataset shards); "
                "the paper's ResNet20 grid",
    locate=_image_locator("cifar10", hf=("img", "label", "train", "test"), wds_reference="test",
                          example="--data ./cifar10 (a directory written by datasets' to_parquet)"),
    space="resnet20",
))
register_preset(Preset(
    name="cifar100",
    description="CIFAR-100 from --data (HF layout: img/fine_label, splits train/test; or WebDataset shards); "
                "the paper's ResNet20 grid; label reduction turns on automatically at small ratios",
    locate=_image_locator("cifar100", hf=("img", "fine_label", "train", "test"), wds_reference="test",
                          example="--data ./cifar100"),
    space="resnet20",
))
