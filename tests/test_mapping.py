"""NeighborMap: the reference set maps onto itself as the identity, hnsw agrees with exact
search, streaming queries equal one query, fits are deterministic, bad input is rejected."""

from __future__ import annotations

import numpy as np
import pytest

from proxyds.selection.mapping import NeighborMap

METHODS = ["hnsw", "exact"]
COMPONENTS = [None, 8]  # d = 32 below: None keeps all 32 dims, 8 fits a PCA


def _points(n: int = 200, d: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


def _clusters(n: int, d: int = 32, n_clusters: int = 10, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(1234).normal(scale=5.0, size=(n_clusters, d))
    return (centres[rng.integers(n_clusters, size=n)] + rng.normal(size=(n, d))).astype(np.float32)


def _brute_force(nm: NeighborMap, ref: np.ndarray, x: np.ndarray) -> np.ndarray:
    r, q = nm.transform(ref).astype(np.float64), nm.transform(x).astype(np.float64)
    return (((q[:, None, :] - r[None, :, :]) ** 2).sum(-1)).argmin(1)


@pytest.mark.parametrize("n_components", COMPONENTS)
@pytest.mark.parametrize("method", METHODS)
def test_reference_maps_onto_itself(method, n_components):
    ref = _points()
    nm = NeighborMap(n_components, method).fit(ref)
    assert nm.n_reference_ == len(ref)
    assert (nm.pca_ is None) == (n_components is None)
    idx, dist = nm.query(ref)
    assert idx.dtype == np.int64 and dist.dtype == np.float32
    np.testing.assert_array_equal(idx, np.arange(len(ref)))
    np.testing.assert_allclose(dist, 0.0, atol=1e-3)


@pytest.mark.parametrize("n_components", COMPONENTS)
@pytest.mark.parametrize("method", METHODS)
def test_permuted_reference_maps_to_its_permutation(method, n_components):
    ref = _points(seed=1)
    perm = np.random.default_rng(0).permutation(len(ref))
    idx, _ = NeighborMap(n_components, method).fit(ref).query(ref[perm])
    np.testing.assert_array_equal(idx, perm)


@pytest.mark.parametrize("method", METHODS)
def test_query_matches_brute_force(method):
    ref, x = _points(150, seed=2), _points(300, seed=3)
    nm = NeighborMap(8, method).fit(ref)
    idx, dist = nm.query(x)
    assert ((idx >= 0) & (idx < len(ref))).all()
    assert (dist >= 0).all()
    assert (idx == _brute_force(nm, ref, x)).mean() >= 0.99
    # returned distance is the squared L2 distance in the reduced space
    r, q = nm.transform(ref), nm.transform(x)
    np.testing.assert_allclose(dist, ((q - r[idx]) ** 2).sum(1), rtol=1e-3, atol=1e-3)


def test_exact_and_hnsw_agree_on_clusters():
    ref, train = _clusters(600, seed=4), _clusters(2000, seed=5)
    exact_idx, exact_dist = NeighborMap(16, "exact").fit(ref).query(train)
    hnsw_idx, hnsw_dist = NeighborMap(16, "hnsw").fit(ref).query(train)
    recall = (exact_idx == hnsw_idx).mean()
    assert recall >= 0.99, recall
    same = exact_idx == hnsw_idx
    np.testing.assert_allclose(hnsw_dist[same], exact_dist[same], rtol=1e-3, atol=1e-3)
    # hnsw is approximate: it never finds a point closer than the exact nearest one
    assert (hnsw_dist >= exact_dist - 1e-3).all()


@pytest.mark.parametrize("method", METHODS)
def test_batch_by_batch_equals_all_at_once(method):
    ref, train = _clusters(300, seed=6), _clusters(500, seed=7)
    nm = NeighborMap(8, method).fit(ref)
    idx, dist = nm.query(train)
    parts = [nm.query(train[i:i + 37]) for i in range(0, len(train), 37)]
    np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), idx)
    np.testing.assert_allclose(np.concatenate([p[1] for p in parts]), dist, rtol=1e-5, atol=1e-5)


def test_exact_block_size_does_not_change_answers():
    ref, train = _clusters(300, seed=8), _clusters(500, seed=9)
    big = NeighborMap(8, "exact").fit(ref).query(train)
    small = NeighborMap(8, "exact", block_size=16).fit(ref).query(train)
    np.testing.assert_array_equal(small[0], big[0])
    np.testing.assert_allclose(small[1], big[1], rtol=1e-5, atol=1e-5)


def _exact64(ref: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Float64 brute force from the vectors; ties go to the lowest reference index."""
    d = (((x[:, None, :].astype(np.float64) - ref[None, :, :].astype(np.float64)) ** 2).sum(-1))
    return d.argmin(1), d.min(1)


def test_exact_answers_do_not_depend_on_batching_blocks_or_threads():
    """Without PCA the query rows reach the search unchanged, so the exact search's answers
    must be the same bits however the rows are batched, blocked or threaded (the float32
    matrix product's rounding differs with all three)."""
    import torch

    ref, train = _clusters(300, seed=6), _clusters(500, seed=7)
    nm = NeighborMap(None, "exact").fit(ref)
    before = torch.get_num_threads()
    try:  # the tests run on one thread (conftest): answer once on two, then batched on one
        torch.set_num_threads(2)
        idx, dist = nm.query(train)
    finally:
        torch.set_num_threads(before)
    runs = [[nm.query(train[i:i + 37]) for i in range(0, len(train), 37)],
            [NeighborMap(None, "exact", block_size=16).fit(ref).query(train)],
            [nm.query(train[i:i + 1]) for i in range(0, 60)],
            [nm.query(train)]]
    for parts in runs:
        n = sum(len(p[0]) for p in parts)
        np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), idx[:n])
        np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), dist[:n])
    want_idx, want_dist = _exact64(ref, train)
    np.testing.assert_array_equal(idx, want_idx)
    np.testing.assert_array_equal(dist, want_dist.astype(np.float32))


def test_exact_ties_go_to_the_lowest_index_in_any_batch():
    """More copies of a point than the float32 shortlist holds: every batching answers the
    lowest index of the copies, with the float64 distance."""
    rng = np.random.default_rng(3)
    ref = rng.normal(size=(100, 8)).astype(np.float32)
    copies = [5, 17, 23, 40, 41, 42, 60, 61, 77, 90, 99]
    ref[copies] = ref[5]
    train = (ref[5] + rng.normal(scale=1e-3, size=(50, 8))).astype(np.float32)
    nm = NeighborMap(None, "exact").fit(ref)
    for parts in ([nm.query(train)], [nm.query(train[i:i + 7]) for i in range(0, 50, 7)]):
        idx = np.concatenate([p[0] for p in parts])
        np.testing.assert_array_equal(idx, np.full(50, 5))
        np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]),
                                      _exact64(ref, train)[1].astype(np.float32))


def test_exact_is_exact_when_the_float32_product_cancels():
    """Points far from the origin: |r|^2 - 2 q.r loses most digits in float32, yet the answer
    is the float64 nearest neighbour."""
    ref, train = _points(300, d=8, seed=2) + 3000, _points(200, d=8, seed=3) + 3000
    idx, dist = NeighborMap(None, "exact").fit(ref).query(train)
    want_idx, want_dist = _exact64(ref, train)
    np.testing.assert_array_equal(idx, want_idx)
    np.testing.assert_array_equal(dist, want_dist.astype(np.float32))


@pytest.mark.parametrize("method", METHODS)
def test_pca_projection_is_exact_to_float32(method):
    """The projection is computed in float64 and rounded once (the BLAS' float32 rounding
    would depend on the batch shape): it matches a float64 reference to the last bit but one."""
    ref, train = _clusters(300, seed=6), _clusters(500, seed=7)
    nm = NeighborMap(8, method).fit(ref)
    p = nm.pca_
    want = (train.astype(np.float64) - p.mean_) @ p.components_.astype(np.float64).T
    np.testing.assert_allclose(nm.transform(train), want, rtol=2 ** -23, atol=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_deterministic(method):
    ref, train = _clusters(400, seed=10), _clusters(800, seed=11)
    a = NeighborMap(8, method, seed=3).fit(ref)
    b = NeighborMap(8, method, seed=3).fit(ref)
    np.testing.assert_array_equal(a.transform(train), b.transform(train))
    ia, da = a.query(train)
    ib, db = b.query(train)
    np.testing.assert_array_equal(ia, ib)
    np.testing.assert_array_equal(da, db)


def test_fit_returns_self_and_transform_shapes():
    ref = _points()
    nm = NeighborMap(8, "exact")
    assert nm.fit(ref) is nm
    z = nm.transform(ref)
    assert z.dtype == np.float32 and z.shape == (len(ref), 8)
    assert z.flags["C_CONTIGUOUS"]


def test_no_pca_transform_is_identity():
    ref = _points()
    nm = NeighborMap(None, "exact").fit(ref.astype(np.float64))
    np.testing.assert_array_equal(nm.transform(ref), ref)


def test_pca_skipped_when_components_not_below_dims():
    ref = _points(50, d=6)
    nm = NeighborMap(64, "hnsw").fit(ref)  # 64 >= min(50, 6): no PCA
    assert nm.pca_ is None
    np.testing.assert_array_equal(nm.query(ref)[0], np.arange(50))


@pytest.mark.parametrize("method", METHODS)
def test_single_reference_point(method):
    ref = _points(1, seed=12)
    idx, _ = NeighborMap(None, method).fit(ref).query(_points(10, seed=13))
    np.testing.assert_array_equal(idx, np.zeros(10))


@pytest.mark.parametrize("method", METHODS)
def test_empty_query_without_pca(method):
    idx, dist = NeighborMap(None, method).fit(_points()).query(np.zeros((0, 32), np.float32))
    assert idx.shape == dist.shape == (0,)
    assert idx.dtype == np.int64 and dist.dtype == np.float32


@pytest.mark.parametrize("method", METHODS)
def test_empty_query_with_pca(method):
    idx, dist = NeighborMap(8, method).fit(_points()).query(np.zeros((0, 32), np.float32))
    assert idx.shape == dist.shape == (0,)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("method", METHODS)
def test_non_finite_features_rejected(method, bad):
    ref = _points()
    ref_bad = ref.copy()
    ref_bad[[3, 7], 5] = bad
    with pytest.raises(ValueError, match="NaN or infinite values in 2 rows"):
        NeighborMap(8, method).fit(ref_bad)
    nm = NeighborMap(8, method).fit(ref)
    with pytest.raises(ValueError, match="NaN or infinite values in 2 rows"):
        nm.query(ref_bad)


@pytest.mark.parametrize("shape", [(0, 32), (32,), (2, 3, 4)])
def test_bad_reference_shape(shape):
    with pytest.raises(ValueError, match="non-empty 2-D"):
        NeighborMap(8, "exact").fit(np.zeros(shape, np.float32))


@pytest.mark.parametrize("method", METHODS)
def test_query_before_fit(method):
    with pytest.raises(RuntimeError, match="before fit"):
        NeighborMap(8, method).query(_points())


def test_bad_method():
    with pytest.raises(ValueError, match="'annoy'"):
        NeighborMap(8, "annoy")


@pytest.mark.parametrize("n_components", [0, -3])
def test_bad_n_components(n_components):
    with pytest.raises(ValueError, match=rf"n_components.*got {n_components}"):
        NeighborMap(n_components)
