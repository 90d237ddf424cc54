"""Shared fixtures: tiny locally generated datasets; no test touches the network."""

from __future__ import annotations

import os
import tempfile

import pytest

from helpers import TINY_MNIST1D, Built, tiny_config, tree_digest

# The tests' models are tiny: intra-op threads only add spinning, and on a shared 2-core CPU a
# tiny build ran 2-3x slower on two threads than on one. Set before torch is imported so
# that subprocesses (CLI, torchrun, SIGKILL tests) inherit it; export OMP_NUM_THREADS to test
# with more threads.
os.environ.setdefault("OMP_NUM_THREADS", "1")
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
def hf_offline(monkeypatch):
    """No test may touch the network: datasets and huggingface_hub read these at import."""
    import datasets
    import huggingface_hub.constants

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True, raising=False)
    datasets.disable_progress_bars()


@pytest.fixture(scope="session")
def tiny_mnist1d(tmp_path_factory):
    """A 480/120 MNIST-1D dataset as parquet shards (3 train shards of 160 rows)."""
    from proxyds.presets import materialize_mnist1d

    return materialize_mnist1d(TINY_MNIST1D, root=tmp_path_factory.mktemp("mnist1d"), rows_per_shard=160)



@pytest.fixture(scope="session")
def parquet_proxy(tiny_mnist1d, tmp_path_factory):
    """The default tiny parquet proxy of ``tiny_mnist1d`` (``tiny_config``), built once per session
    for every test file that needs a finished output. Read-only: copy before changing it or
    building into its workdir; a test that changed it fails here, at the end of the session."""
    from proxyds import build

    out = tmp_path_factory.mktemp("parquet-proxy") / "proxy"
    built = Built(tiny_mnist1d, out, out.parent / "work", build(tiny_config(f"hf:{tiny_mnist1d}", out)))
    before = tree_digest(built.out, built.workdir)
    yield built
    changed = sorted(set(before.items()) ^ set(tree_digest(built.out, built.workdir).items()))
    assert not changed, f"a test changed the shared parquet_proxy output or workdir: {sorted({p for p, _ in changed})}"
