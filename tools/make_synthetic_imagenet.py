"""Write ImageNet-like (or CIFAR-like) synthetic data in the layouts real copies use.

ImageNet layout (``make_synthetic_imagenet``), the same JPEG bytes in both formats:

- WebDataset: ``OUT/wds/train-000000.tar ...``, ``OUT/wds/val-000000.tar ...``; each example
  is ``KEY.cls`` (ASCII class index) + ``KEY.jpg``, keys like ``n00000003_000123`` (a
  synset-like class id and the example's position in its split).
- HF parquet: ``OUT/hf/data/train-*.parquet``, ``OUT/hf/data/validation-*.parquet`` with
  ``image`` (``datasets.Image``, stored as ``{bytes, path}``) and ``label`` (``ClassLabel``
  named ``n00000000`` ...), readable with ``datasets.load_dataset("OUT/hf")``.

CIFAR layout (``make_synthetic_cifar``): ``OUT/data/{train,test}-*.parquet`` with 32x32 PNGs
in ``img`` and ``label`` (CIFAR-10) or ``fine_label`` + ``coarse_label`` (CIFAR-100), as
HF's ``cifar10``/``cifar100`` have them.

Images have learnable class structure: each class owns a three-colour palette, a stripe
orientation and frequency, and a blob position and size; each image draws its own size,
stripe phase, orientation jitter, scale, blob shift, brightness, colour cast and noise.
Colours alone separate the classes at 16x16 pixels, the stripes need a few more. Every
image is a pure function of (seed, split, index), so output bytes are the same on every
run and in any number of worker processes.

    python tools/make_synthetic_imagenet.py OUT --train 1000 --val 200 --classes 10 [--formats wds,hf]
    python tools/make_synthetic_imagenet.py OUT --train 1000 --val 200 --cifar10
"""

from __future__ import annotations

import argparse
import io
import logging
import multiprocessing
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["make_synthetic_imagenet", "make_synthetic_cifar", "iter_images", "split_labels", "render", "class_params"]

log = logging.getLogger("make_synthetic_imagenet")

CIFAR10_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
_SPLIT_IDS = {"train": 0, "val": 1, "validation": 1, "test": 2}
_NOISE_TILE = 640  # side of the shared fine-noise texture (>= the largest image side we crop from)
_GRAIN = 7  # fine noise amplitude: +-7 grey levels


def class_params(num_classes: int, *, seed: int) -> dict[str, np.ndarray]:
    """Per-class appearance: palette (C, 3, 3) in 0..255, stripe angle/frequency, blob centre/radius."""
    rng = np.random.default_rng([seed, 0xC1A55])
    return {
        "palette": rng.uniform(20, 235, size=(num_classes, 3, 3)),
        "angle": rng.uniform(0, np.pi, size=num_classes),
        "freq": rng.uniform(2.0, 9.0, size=num_classes),  # stripe cycles across the image
        "centre": rng.uniform(0.25, 0.75, size=(num_classes, 2)),
        "radius": rng.uniform(0.08, 0.25, size=num_classes),
    }


def _noise_tile(seed: int) -> np.ndarray:
    return np.random.default_rng([seed, 0x7153]).integers(0, 2 * _GRAIN + 1, size=(_NOISE_TILE, _NOISE_TILE, 3),
                                                          dtype=np.uint8)


def render(params: dict[str, np.ndarray], label: int, width: int, height: int, rng: np.random.Generator,
           noise: np.ndarray | None = None, *, coarse: int = 4) -> np.ndarray:
    """One (height, width, 3) uint8 image of class ``label``.

    The pattern is drawn at 1/``coarse`` resolution and resized (bilinear), then a crop of
    ``noise`` adds fine grain, so a 500 px image costs about as much as a 125 px one.
    """
    h, w = max(2, -(-height // coarse)), max(2, -(-width // coarse))
    yy = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
    xx = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :] * np.float32(width / height)
    scale = rng.uniform(0.8, 1.25)
    angle = params["angle"][label] + rng.normal(0.0, 0.15)
    u = xx * np.float32(np.cos(angle)) + yy * np.float32(np.sin(angle))
    stripes = 0.5 + 0.5 * np.sin(np.float32(2 * np.pi * params["freq"][label] * scale) * u
                                 + np.float32(rng.uniform(0, 2 * np.pi)))
    cx, cy = params["centre"][label] + rng.uniform(-0.15, 0.15, size=2)
    r2 = np.float32(2 * (params["radius"][label] * scale) ** 2)
    blob = np.exp(-((xx - np.float32(cx * width / height)) ** 2 + (yy - np.float32(cy)) ** 2) / r2)
    pal = params["palette"][label].astype(np.float32) * np.float32(rng.uniform(0.75, 1.25))  # brightness
    pal += rng.normal(0.0, 12.0, size=3).astype(np.float32)  # colour cast
    s, b = stripes[..., None], blob[..., None]
    img = (pal[0] * (1 - s) + pal[1] * s) * (1 - b) + pal[2] * b
    img += rng.normal(0.0, 10.0, size=img.shape).astype(np.float32)
    # Keep _GRAIN of headroom so the fine noise can be added in uint8 without overflow.
    small = Image.fromarray(np.clip(img, _GRAIN, 255 - _GRAIN).astype(np.uint8))
    out = np.array(small.resize((width, height), Image.BILINEAR))  # bilinear stays within the range
    if noise is not None:
        oy, ox = rng.integers(0, len(noise) - height + 1), rng.integers(0, len(noise) - width + 1)
        out -= _GRAIN
        out += noise[oy:oy + height, ox:ox + width]
    return out


def _encode(img: np.ndarray, fmt: str, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    if fmt == "JPEG":
        Image.fromarray(img).save(buf, format="JPEG", quality=quality)
    else:
        Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


# ---------------------------------------------------------------------------- generation
_WORKER: dict = {}  # a pool worker's state, set once by _init_worker


def _state(num_classes: int, seed: int, size: tuple[int, int], fmt: str, quality: int = 90) -> dict:
    return dict(params=class_params(num_classes, seed=seed), seed=seed, size=size, fmt=fmt, quality=quality,
                noise=_noise_tile(seed) if fmt == "JPEG" else None, coarse=4 if fmt == "JPEG" else 1)


def _init_worker(*init) -> None:
    _WORKER.update(_state(*init))


def _make_one(job: tuple[int, int, int], state: dict | None = None) -> bytes:
    st = _WORKER if state is None else state
    split_id, index, label = job
    rng = np.random.default_rng([st["seed"], split_id, index])
    lo, hi = st["size"]
    width, height = (int(v) for v in rng.integers(lo, hi + 1, size=2))
    return _encode(render(st["params"], label, width, height, rng, st["noise"], coarse=st["coarse"]), st["fmt"],
                   st["quality"])


def split_labels(n: int, num_classes: int, split: str, *, seed: int) -> np.ndarray:
    """Balanced labels (counts differ by at most one) in a seeded random order."""
    return np.random.default_rng([seed, _SPLIT_IDS[split], 0x1AB]).permutation(np.arange(n) % num_classes)


def iter_images(split: str, labels: Sequence[int], *, num_classes: int, seed: int,
                size: tuple[int, int] = (300, 500), fmt: str = "JPEG", workers: int = 1,
                quality: int = 90) -> Iterator[bytes]:
    """Encoded images (JPEG or PNG bytes) of ``labels`` in order; example i of ``split`` is the
    same bytes whatever the number of ``workers``. ``quality``: the JPEG quality (bigger files)."""
    init = (num_classes, seed, (int(size[0]), int(size[1])), fmt, int(quality))
    jobs = ((_SPLIT_IDS[split], i, int(c)) for i, c in enumerate(labels))
    if workers <= 1:
        state = _state(*init)
        yield from (_make_one(job, state) for job in jobs)
        return
    ctx = multiprocessing.get_context("spawn" if sys.platform == "darwin" else "fork")
    with ctx.Pool(workers, initializer=_init_worker, initargs=init) as pool:
        yield from pool.imap(_make_one, jobs, chunksize=16)  # imap keeps the order


def _check(name: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum} (got {value!r})")


def make_synthetic_imagenet(out: str | Path, *, num_train: int, num_val: int, num_classes: int,
                            size: tuple[int, int] = (300, 500), seed: int = 0,
                            formats: Sequence[str] = ("wds", "hf"), images_per_shard: int = 1000,
                            workers: int = 1, quality: int = 90) -> dict[str, dict[str, list[Path]]]:
    """Write train/val splits under ``out`` (see module doc); returns {format: {split: shard paths}}.

    ``size`` bounds each image's width and height (drawn independently, inclusive); ``quality``
    is the JPEG quality (90; 93 at 560-640 px gives ImageNet's mean of about 110 kB).
    """
    for name, value, minimum in (("num_train", num_train, 0), ("num_val", num_val, 0),
                                 ("num_classes", num_classes, 2), ("images_per_shard", images_per_shard, 1)):
        _check(name, value, minimum)
    if len(size) != 2 or not 8 <= size[0] <= size[1] <= _NOISE_TILE:
        raise ValueError(f"size must be (min, max) with 8 <= min <= max <= {_NOISE_TILE} (got {size!r})")
    formats = tuple(formats)
    if not formats or set(formats) - {"wds", "hf"}:
        raise ValueError(f"formats must be a non-empty subset of ('wds', 'hf') (got {formats!r})")
    import datasets

    out = Path(out)
    names = [f"n{c:08d}" for c in range(num_classes)]
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=names)})
    written: dict[str, dict[str, list[Path]]] = {f: {} for f in formats}
    for split, hf_split, n in (("train", "train", num_train), ("val", "validation", num_val)):
        labels = split_labels(n, num_classes, split, seed=seed)
        width = max(6, len(str(max(n - 1, 0))))
        start = time.perf_counter()
        with _Writers(formats, out, split, hf_split, features, images_per_shard) as (wds, hf):
            for i, (label, data) in enumerate(zip(labels, iter_images(split, labels, num_classes=num_classes, seed=seed,
                                                                          size=size, workers=workers,
                                                                          quality=quality))):
                key = f"{names[label]}_{i:0{width}d}"
                if wds is not None:
                    wds.write(key, {"cls": str(int(label)).encode("ascii"), "jpg": data})
                if hf is not None:
                    hf.write({"image": {"bytes": data, "path": f"{key}.jpg"}, "label": int(label)})
        for fmt, writer in (("wds", wds), ("hf", hf)):
            if writer is not None:
                written[fmt][split] = list(writer.paths)
        log.info("%s: %d images in %.1fs", split, n, time.perf_counter() - start)
    return written


class _Writers:
    """The WebDataset and/or parquet writer of one split, entered and exited together."""

    def __init__(self, formats, out: Path, split: str, hf_split: str, features, per_shard: int):
        from proxyds.sinks import ParquetShardWriter, WdsShardWriter

        self.wds = WdsShardWriter(out / "wds", split, maxcount=per_shard) if "wds" in formats else None
        self.hf = (ParquetShardWriter(out / "hf" / "data", hf_split, features, rows_per_shard=per_shard,
                                      rows_per_group=min(100, per_shard)) if "hf" in formats else None)

    def __enter__(self):
        for w in (self.wds, self.hf):
            if w is not None:
                w.__enter__()
        return self.wds, self.hf

    def __exit__(self, *exc):
        for w in (self.wds, self.hf):
            if w is not None:
                w.__exit__(*exc)


def make_synthetic_cifar(out: str | Path, *, num_train: int, num_test: int, num_classes: int = 10, seed: int = 0,
                         rows_per_shard: int = 10_000, workers: int = 1) -> dict[str, list[Path]]:
    """CIFAR-10/100-layout parquet under ``out/data`` (see module doc); returns {split: shard paths}.

    CIFAR-100's ``coarse_label`` is ``fine_label // 5`` (20 superclasses of 5 classes).
    """
    if num_classes not in (10, 100):
        raise ValueError(f"num_classes must be 10 (CIFAR-10) or 100 (CIFAR-100) (got {num_classes!r})")
    for name, value, minimum in (("num_train", num_train, 0), ("num_test", num_test, 0),
                                 ("rows_per_shard", rows_per_shard, 1)):
        _check(name, value, minimum)
    import datasets

    from proxyds.sinks import ParquetShardWriter

    if num_classes == 10:
        cols = {"img": datasets.Image(), "label": datasets.ClassLabel(names=list(CIFAR10_NAMES))}
    else:
        cols = {"img": datasets.Image(), "fine_label": datasets.ClassLabel(names=[f"class_{c:03d}" for c in range(100)]),
                "coarse_label": datasets.ClassLabel(names=[f"superclass_{c:02d}" for c in range(20)])}
    features = datasets.Features(cols)
    written = {}
    for split, n in (("train", num_train), ("test", num_test)):
        labels = split_labels(n, num_classes, split, seed=seed)
        with ParquetShardWriter(Path(out) / "data", split, features, rows_per_shard=rows_per_shard) as writer:
            for i, (label, data) in enumerate(zip(labels, iter_images(split, labels, num_classes=num_classes, seed=seed,
                                                                          size=(32, 32), fmt="PNG", workers=workers))):
                row = {"img": {"bytes": data, "path": f"{split}_{i:05d}.png"}}
                if num_classes == 10:
                    row["label"] = int(label)
                else:
                    row.update(fine_label=int(label), coarse_label=int(label) // 5)
                writer.write(row)
        written[split] = list(writer.paths)
    return written


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", help="output directory")
    p.add_argument("--train", type=int, default=1000, help="train examples")
    p.add_argument("--val", type=int, default=200, help="validation (ImageNet) / test (CIFAR) examples")
    p.add_argument("--classes", type=int, default=10, help="classes (ImageNet layout)")
    p.add_argument("--formats", default="wds,hf", help="comma-separated subset of wds,hf (ImageNet layout)")
    p.add_argument("--size", default="300,500", help="min,max image side in pixels (ImageNet layout)")
    p.add_argument("--images-per-shard", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1, help="image-generating processes (output is the same)")
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("--cifar10", action="store_true", help="CIFAR-10 layout (32x32 PNG, img + label)")
    kind.add_argument("--cifar100", action="store_true", help="CIFAR-100 layout (img + fine_label + coarse_label)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    start = time.perf_counter()
    if args.cifar10 or args.cifar100:
        make_synthetic_cifar(args.out, num_train=args.train, num_test=args.val, num_classes=10 if args.cifar10 else 100,
                             seed=args.seed, rows_per_shard=args.images_per_shard, workers=args.workers)
    else:
        lo, hi = (int(v) for v in args.size.split(","))
        make_synthetic_imagenet(args.out, num_train=args.train, num_val=args.val, num_classes=args.classes,
                                size=(lo, hi), seed=args.seed, formats=[f for f in args.formats.split(",") if f],
                                images_per_shard=args.images_per_shard, workers=args.workers)
    n = args.train + args.val
    log.info("wrote %d images to %s in %.1fs (%.0f images/s)", n, args.out, time.perf_counter() - start,
             n / max(time.perf_counter() - start, 1e-9))
    return 0


if __name__ == "__main__":
    sys.exit(main())
