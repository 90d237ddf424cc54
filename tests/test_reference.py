"""Reference features reduced as they arrive: spilled, PCA on a bounded seeded sample, projected."""

from __future__ import annotations

import numpy as np
import pytest

from proxyds.pipeline.distributed import World
from proxyds.pipeline.reference import FeatureSpill, reduce_reference
from proxyds.selection import mapping
from proxyds.selection.mapping import NeighborMap, sample_rows


def _features(n: int, d: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scale = np.r_[10.0, 5.0, np.linspace(1, 0.1, d - 2)]  # two clear leading directions
    return (rng.standard_normal((n, d)) * scale).astype(np.float32)


def _streamed(feats: np.ndarray, tmp_path, n_components: int = 8, seed: int = 0):
    """``feats`` spilled in batches of uneven sizes, in a shuffled order (as DataLoader workers
    hand them over), then reduced; the ids are put back in split order."""
    nmap = NeighborMap(n_components, "exact", seed=seed)
    rng = np.random.default_rng(1)
    cuts = np.unique(np.r_[0, np.sort(rng.integers(1, len(feats), size=len(feats) // 150)), len(feats)])
    batches = list(zip(cuts[:-1], cuts[1:]))
    ids = [None] * len(batches)
    with FeatureSpill(tmp_path) as spill:
        for b in rng.permutation(len(batches)):
            ids[b] = spill.add(feats[batches[b][0]:batches[b][1]])[0]
        points = reduce_reference(spill, np.concatenate(ids), nmap, World())
    return nmap, points


@pytest.mark.parametrize("n", [500, 3000])
def test_streamed_equals_fit_on_the_whole_array(tmp_path, monkeypatch, n):
    monkeypatch.setattr(mapping, "_MIN_SAMPLE", 1000)  # 3000 rows: PCA on a sample of 1000
    feats = _features(n)
    nmap, points = _streamed(feats, tmp_path)
    whole = NeighborMap(8, "exact").fit(feats)
    np.testing.assert_array_equal(nmap.pca_.components_, whole.pca_.components_)
    np.testing.assert_array_equal(points, whole.transform(feats))
    assert points.shape == (n, 8) and points.dtype == np.float32
    assert not list(tmp_path.iterdir())  # the spill file is gone


def test_small_split_fits_pca_on_every_row(tmp_path):
    """At most the sample bound: PCA sees all rows, exactly as before the sample existed."""
    from sklearn.decomposition import PCA

    feats = _features(2000)
    nmap, _ = _streamed(feats, tmp_path)
    want = PCA(n_components=8, svd_solver="full").fit(feats)
    np.testing.assert_array_equal(nmap.pca_.components_, want.components_)
    np.testing.assert_array_equal(nmap.pca_.mean_, want.mean_)


def test_large_split_fits_pca_on_a_seeded_sample(tmp_path, monkeypatch):
    from sklearn.decomposition import PCA

    monkeypatch.setattr(mapping, "_MIN_SAMPLE", 1000)
    feats = _features(3000)
    nmap, _ = _streamed(feats, tmp_path, seed=5)
    rows = sample_rows(3000, 1000, 5)
    want = PCA(n_components=8, svd_solver="full").fit(feats[rows])
    np.testing.assert_array_equal(nmap.pca_.components_, want.components_)
    # the sample's leading directions are the whole split's, up to sampling noise
    full = PCA(n_components=2, svd_solver="full").fit(feats)
    assert np.abs((nmap.pca_.components_[:2] * full.components_).sum(1)).min() > 0.99


def test_sample_rows_is_bounded_sorted_and_seeded():
    rows = sample_rows(50_000, 10_000, 3)
    assert len(rows) == 10_000 and len(np.unique(rows)) == 10_000 and np.all(np.diff(rows) > 0)
    np.testing.assert_array_equal(rows, sample_rows(50_000, 10_000, 3))
    assert not np.array_equal(rows, sample_rows(50_000, 10_000, 4))
    np.testing.assert_array_equal(sample_rows(500, 10_000, 3), np.arange(500))
    np.testing.assert_array_equal(sample_rows(500, None, 3), np.arange(500))
    assert mapping.pca_sample_size(64) == 10_000 and mapping.pca_sample_size(1000) == 20_000


def test_spill_reads_rows_back(tmp_path):
    feats = _features(5000, d=7)
    with FeatureSpill(tmp_path, rank=0) as spill:
        ids = np.concatenate([spill.add(feats[i:i + 999])[0] for i in range(0, 5000, 999)])
        np.testing.assert_array_equal(ids, np.arange(5000))
        rows = np.array([4999, 0, 4096, 3, 4095, 3])  # any order, repeats too
        np.testing.assert_array_equal(spill.take(rows), feats[rows])
        assert spill.take(np.zeros(0, np.int64)).shape == (0, 7)
        np.testing.assert_array_equal(np.concatenate(list(spill.chunks(1000))), feats)
        with pytest.raises(ValueError, match="7 columns"):
            spill.add(np.zeros((2, 8), np.float32))
