"""Plain helpers the test files import (``from helpers import ...``): configs and data writers.

Fixtures live in conftest.py; a test file never imports conftest.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TINY_MNIST1D = {"num_samples": 600, "train_split": 0.8, "seed": 7}  # 480 train, 120 test


def tiny_config(source, out, **overrides):
    """A BuildConfig that builds in a couple of seconds on the tiny datasets."""
    from proxyds.config import BuildConfig

    # one probe epoch on 480 examples leaves the probes at chance by design (fast): these builds
    # test everything but the signal check (tests/test_signal.py tests that), so they allow weak probes
    fields = dict(dataset=source, out=out, ratio=0.1, space="resnet1d", input_column="x", probe_epochs=1,
                  label_reduction="off", allow_weak_probes=True,
                  batch_size=64, pca_components=16, rows_per_shard=20, workdir=out.parent / "work", device="cpu")
    fields.update(overrides)
    return BuildConfig(**fields)


@dataclass(frozen=True)
class Built:
    """A finished build shared by the tests of a session: read it, never change it.

    A test that damages the output, or builds with its probes and stage cache (``workdir``),
    copies them first (``shutil.copytree``); conftest checks at the end that nothing changed.
    """

    src: Path  # the dataset directory it was built from
    out: Path  # the output
    workdir: Path  # probe checkpoints and the stage cache of the build
    result: Any  # the BuildResult


def trained_probes(built: Built) -> tuple[tuple[str, str], ...]:
    """``probe_checkpoints`` that load a finished build's probes: a build that needs probes but
    does not test their training skips it (``--probe lower=PATH --probe upper=PATH``)."""
    files = built.result.summary["probe_checkpoints"]
    return tuple((role, str(built.workdir / "probes" / next(f for f in files if f"-{info['config']}-" in f)))
                 for role, info in built.result.summary["probes"].items())


def tree_digest(*roots: Path) -> dict[str, str]:
    """sha256 of every file under ``roots``, by path: equal digests = nothing was changed."""
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for root in roots for p in sorted(Path(root).rglob("*")) if p.is_file()}


def write_wds_copy(src, dst, *, per_shard: int = 160, edit=None):
    """Write a hf dataset directory as WebDataset shards (x.npy + cls), one split at a time.

    ``edit(split, i, key, fields)`` may return changed (key, fields) or None to drop the example.
    """
    import datasets

    from proxyds.sinks import WdsShardWriter, row_to_wds_fields

    for split in ("train", "test"):
        ds = datasets.load_dataset(str(src), split=split)
        with WdsShardWriter(dst, split, maxcount=per_shard) as w:
            for i, row in enumerate(ds):
                key, fields = f"{split}-{i:08d}", row_to_wds_fields(row, ds.features, "label")
                if edit is not None:
                    changed = edit(split, i, key, fields)
                    if changed is None:
                        continue
                    key, fields = changed
                w.write(key, fields)
    return dst


# ---------------------------------------------------------------- tiny rows for the sink tests

CLASS_NAMES = ["zero", "one", "two"]


def encoded_image(i: int, fmt: str) -> bytes:
    """A 5x6 RGB image of seeded noise, encoded as ``fmt`` (PIL's format name)."""
    import io

    import numpy as np
    import PIL.Image

    rng = np.random.default_rng(i)
    pixels = rng.integers(0, 256, size=(5, 6, 3), dtype=np.uint8)
    buf = io.BytesIO()
    PIL.Image.fromarray(pixels).save(buf, format=fmt)
    return buf.getvalue()


def decoded_image(data: bytes):
    """The RGB pixels of encoded image bytes, as a numpy array."""
    import io

    import numpy as np
    import PIL.Image

    return np.asarray(PIL.Image.open(io.BytesIO(data)).convert("RGB"))


def sink_features():
    """The Features of ``sink_rows``: a class label, a 40-float vector, a string and an image."""
    import datasets

    return datasets.Features(
        {
            "label": datasets.ClassLabel(names=CLASS_NAMES),
            "x": datasets.List(datasets.Value("float32"), length=40),
            "text": datasets.Value("string"),
            "image": datasets.Image(),
        }
    )


def sink_rows(n: int, offset: int = 0, formats=("JPEG", "PNG")) -> list[dict]:
    """``n`` seeded rows matching ``sink_features``; images cycle through ``formats``."""
    import numpy as np

    rows = []
    for i in range(offset, offset + n):
        fmt = formats[i % len(formats)]
        ext = {"JPEG": "jpg", "PNG": "png"}[fmt]
        x = np.random.default_rng(100 + i).standard_normal(40).astype(np.float32)
        rows.append(
            {
                "label": i % 3,
                "x": x.tolist(),
                "text": f"example {i} ünïcode",
                "image": {"bytes": encoded_image(i, fmt), "path": f"img{i}.{ext}"},
            }
        )
    return rows


def rewrite_manifest(out, **columns) -> None:
    """Replace whole columns of OUT's manifest.parquet, keeping its schema."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(out / "manifest.parquet")
    for name, values in columns.items():
        i = table.column_names.index(name)
        table = table.set_column(i, table.schema.field(i), pa.array(values, type=table.schema.field(i).type))
    pq.write_table(table, out / "manifest.parquet", compression="zstd")


def rehash(out, rel: str) -> None:
    """Record ``rel``'s current sha256 and size in proxy.json, and proxy.json's own digest, as a forger would."""
    import json

    from proxyds.pipeline.write import record_digest
    from proxyds.sinks import sha256_file

    record = json.loads((out / "proxy.json").read_text())
    record["files"][rel] = {"sha256": sha256_file(out / rel), "bytes": (out / rel).stat().st_size}
    record["content_sha256"] = record_digest(record)
    (out / "proxy.json").write_text(json.dumps(record, indent=1) + "\n")
