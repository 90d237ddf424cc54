"""Shared fixtures: tiny locally generated datasets; no test touches the network."""

from __future__ import annotations

import os
import tempfile

import pytest

from helpers import TINY_MNIST1D

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# A fresh datasets cache per test session: load_dataset never serves a stale cached copy
# of an output directory whose path a previous session used.
os.environ["HF_DATASETS_CACHE"] = tempfile.mkdtemp(prefix="proxyds-hf-cache-")


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

