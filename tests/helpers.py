"""Plain helpers the test files import (``from helpers import ...``): configs and data writers.

Fixtures live in conftest.py; a test file never imports conftest.
"""

from __future__ import annotations

TINY_MNIST1D = {"num_samples": 600, "train_split": 0.8, "seed": 7}  # 480 train, 120 test


def tiny_config(source, out, **overrides):
    """A BuildConfig that builds in a couple of seconds on the tiny datasets."""
    from proxyds.config import BuildConfig

    fields = dict(dataset=source, out=out, ratio=0.1, space="resnet1d", input_column="x", probe_epochs=1,
                  label_reduction="off",
                  batch_size=64, pca_components=16, rows_per_shard=20, workdir=out.parent / "work", device="cpu")
    fields.update(overrides)
    return BuildConfig(**fields)


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
