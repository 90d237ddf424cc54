"""Shared fixtures: tiny locally generated datasets; no test touches the network."""

from __future__ import annotations

import os
import tempfile

import pytest

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# A fresh datasets cache per test session: load_dataset never serves a stale cached copy
# of an output directory whose path a previous session used.
os.environ["HF_DATASETS_CACHE"] = tempfile.mkdtemp(prefix="proxyds-hf-cache-")

TINY_MNIST1D = {"num_samples": 600, "train_split": 0.8, "seed": 7}  # 480 train, 120 test


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own proxyds cache: nothing leaks between tests or into ~/.cache."""
    monkeypatch.setenv("PROXYDS_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def one_thread():
    """Small models on a shared CPU train far faster on one thread than on contended threads."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_mnist1d(tmp_path_factory):
    """A 480/120 MNIST-1D dataset as parquet shards (3 train shards of 160 rows)."""
    from proxyds.presets import materialize_mnist1d

    return materialize_mnist1d(TINY_MNIST1D, root=tmp_path_factory.mktemp("mnist1d"), rows_per_shard=160)


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
