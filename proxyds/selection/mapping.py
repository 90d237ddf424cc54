"""Nearest reference example of every train example (paper §3.2, Algorithm 1 steps 4-7).

``NeighborMap(...).fit(reference_features)`` fits PCA on the reference features and indexes
the reduced reference points; ``query(train_features)`` maps any batch of train features to
the index of its nearest reference example (and the squared L2 distance in PCA space). Train
features never need to be held whole: query them batch by batch as they stream.

Reference features need not be held whole either: PCA is fitted on a seeded sample of at most
:func:`pca_sample_size` rows (all of them when there are fewer, so small reference splits are
fitted exactly as before), so a caller streaming the reference split keeps that sample and
the reduced rows only (``fit_pca(sample)``, ``transform`` batch by batch, ``fit_index(points)``;
``fit`` does the three on an array, with the same sample).

Neighbour search is ``"hnsw"`` (hnswlib, approximate, the default) or ``"exact"`` (blocked
matrix product in torch). The hnswlib graph is built single-threaded with a fixed seed, so
the same reference features always give the same graph and the same answers.

Answers never depend on how the queries are batched, on the block size or on the BLAS
(whose float32 sums round differently with the matrix shapes and thread count): the PCA
projection runs in float64 and is rounded to float32 once, and the exact search only uses
the float32 matrix product to shortlist candidates, then picks the nearest by a float64
distance computed from the two vectors in a fixed order (ties: the lowest reference index).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["NeighborMap", "HNSW_DEFAULTS", "Projection", "pca_sample_size", "sample_rows"]

# M: graph degree; ef_construction: build-time beam; ef: query-time beam (>= k). Chosen by
# measurement (tools/bench_neighbors.py, docs/benchmarks-neighbors.md): the fastest setting
# whose inherited importance agrees with exact search on >= 0.997 of 50k queries (1.28M
# queries into 50k references at d=64: agreement 0.998, recall@1 0.996).
HNSW_DEFAULTS = {"M": 16, "ef_construction": 100, "ef": 96}

# Exact search: candidates per row taken from the float32 product and re-ranked in float64, and
# how many (query, reference) pairs get their float64 distance at once (bounds the memory).
_CANDIDATES = 8
_PAIRS = 1 << 18
_EPS32 = float(np.finfo(np.float32).eps)

# PCA is fitted on at most max(_SAMPLE_PER_COMPONENT * components, _MIN_SAMPLE) reference rows:
# enough for the leading components of 2,048-d features, and a bound on what is held.
_SAMPLE_PER_COMPONENT = 20
_MIN_SAMPLE = 10_000


def pca_sample_size(n_components: int | None) -> int | None:
    """How many reference rows PCA is fitted on at most (None: no PCA, so no sample)."""
    return None if n_components is None else max(_SAMPLE_PER_COMPONENT * n_components, _MIN_SAMPLE)


def sample_rows(n: int, size: int | None, seed: int) -> np.ndarray:
    """The rows (ascending) of ``n`` that PCA is fitted on: all when ``n <= size`` (or no
    ``size``), else ``size`` drawn without replacement by ``default_rng(seed)``."""
    if size is None or n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


@dataclass(frozen=True)
class Projection:
    """A fitted PCA's ``mean_`` (d,) and ``components_`` (k, d): what ``transform`` applies."""

    mean_: np.ndarray
    components_: np.ndarray

    @property
    def n_components_(self) -> int:
        return len(self.components_)


class NeighborMap:
    """PCA + nearest-neighbour map from train features to reference examples.

    Parameters follow scikit-learn: set in ``__init__``, learned state ends in ``_``
    (``pca_``, ``index_``, ``n_reference_``).
    """

    def __init__(self, n_components: int | None = 64, method: str = "hnsw", *, seed: int = 0,
                 hnsw_M: int = HNSW_DEFAULTS["M"], ef_construction: int = HNSW_DEFAULTS["ef_construction"],
                 ef: int = HNSW_DEFAULTS["ef"], num_threads: int | None = None, block_size: int = 4096):
        if method not in ("hnsw", "exact"):
            raise ValueError(f"method must be 'hnsw' or 'exact' (got {method!r})")
        if n_components is not None and n_components < 1:
            raise ValueError(f"n_components must be >= 1 or None for no PCA (got {n_components})")
        self.n_components = n_components
        self.method = method
        self.seed = seed
        self.hnsw_M = hnsw_M
        self.ef_construction = ef_construction
        self.ef = ef
        self.num_threads = num_threads or os.cpu_count() or 1  # queries only: the graph is built on one thread
        self.block_size = block_size

    def fit(self, reference: np.ndarray) -> "NeighborMap":
        """Fit PCA on the reference rows :func:`sample_rows` picks and index all of them."""
        ref = _check_features(reference, "reference features")
        self.fit_pca(ref[sample_rows(len(ref), pca_sample_size(self.n_components), self.seed)])
        return self.fit_index(self.transform(ref))

    def fit_pca(self, sample: np.ndarray) -> "NeighborMap":
        """Fit the PCA on ``sample`` (reference rows in their order; see :func:`sample_rows`)."""
        ref = _check_features(sample, "reference features")
        self.pca_ = None
        if self.n_components is not None and self.n_components < min(ref.shape):
            from sklearn.decomposition import PCA

            pca = PCA(n_components=self.n_components, svd_solver="full", random_state=self.seed).fit(ref)
            self.pca_ = Projection(pca.mean_, pca.components_)
        return self

    def set_projection(self, projection: Projection | None) -> "NeighborMap":
        """Use an already fitted ``projection`` (as saved from ``pca_``) instead of ``fit_pca``."""
        self.pca_ = projection
        return self

    def fit_index(self, points: np.ndarray) -> "NeighborMap":
        """Index the reference points, already reduced by :meth:`transform`."""
        if not hasattr(self, "pca_"):
            raise RuntimeError("NeighborMap.fit_index called before fit_pca()")
        points = _check_features(points, "reference features")
        self.n_reference_ = len(points)
        if self.method == "hnsw":
            import hnswlib

            index = hnswlib.Index(space="l2", dim=points.shape[1])
            index.init_index(max_elements=len(points), M=self.hnsw_M, ef_construction=self.ef_construction,
                             random_seed=self.seed)
            index.add_items(points, np.arange(len(points)), num_threads=1)  # one thread: same graph every time
            index.set_ef(max(self.ef, 1))
            self.index_ = index
        else:
            self.index_ = torch.from_numpy(points)
            self.norms_ = (self.index_ * self.index_).sum(1)
            self.points64_ = points.astype(np.float64)
        return self

    def transform(self, features: np.ndarray) -> np.ndarray:
        """Reduce features with the fitted PCA (identity when there is none), as float32."""
        if not hasattr(self, "pca_"):
            raise RuntimeError("NeighborMap.transform called before fit()")
        x = _check_features(features, "features")
        if self.pca_ is not None and len(x) == 0:
            return np.zeros((0, self.pca_.n_components_), np.float32)
        if self.pca_ is not None:  # float64, then rounded once: the same row gives the same floats in any batch
            p = self.pca_
            x = (x.astype(np.float64) - p.mean_.astype(np.float64)) @ p.components_.astype(np.float64).T
        return np.ascontiguousarray(x, dtype=np.float32)

    def query(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Nearest reference index (int64) and squared L2 distance (float32) of each row."""
        if not hasattr(self, "index_"):
            raise RuntimeError("NeighborMap.query called before fit()")
        x = self.transform(features)
        if len(x) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        if self.method == "hnsw":
            labels, dist = self.index_.knn_query(x, k=1, num_threads=self.num_threads)
            return labels[:, 0].astype(np.int64), dist[:, 0].astype(np.float32)
        idx, dist = [], []
        for start in range(0, len(x), self.block_size):
            i, d = _exact_nearest(x[start:start + self.block_size], self.index_, self.norms_, self.points64_)
            idx.append(i)
            dist.append(d)
        return np.concatenate(idx), np.concatenate(dist).astype(np.float32)


def _exact_nearest(q: np.ndarray, ref: torch.Tensor, ref_norms: torch.Tensor,
                   ref64: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest reference row of each query row (ties: the lowest index) and its float64
    squared distance: exactly the float64 answer over all references, in any batching.

    ``|r|^2 - 2 q.r`` (one fused float32 matrix product; ``|q|^2`` does not change the
    order) is off from its true value by at most ``err`` (the dot-product rounding bound
    ``(d + 2) eps (|r|^2 + 2 |q||r|)``, doubled). So every reference whose true distance is
    no more than the best-scoring one's scores within ``2 err`` of the row's best score. The
    ``_CANDIDATES`` best scores of a row almost always reach past that bound, and are
    re-ranked by :func:`_sq_dist`; a row where they do not (near-duplicate references)
    re-ranks every reference under the bound.
    """
    n, d = ref64.shape
    q64 = q.astype(np.float64)
    radius = np.sqrt((ref64 * ref64).sum(1).max())  # the largest |r|
    err = 2 * (d + 2) * _EPS32 * (2 * radius**2 + 2 * np.sqrt((q64 * q64).sum(1)) * radius)
    approx = torch.addmm(ref_norms, torch.from_numpy(q), ref.T, alpha=-2.0)
    k = min(_CANDIDATES, n)
    scores, cand = approx.topk(k, dim=1, largest=False, sorted=True)
    bound = (scores[:, 0].double() + torch.from_numpy(2 * err)).float()
    bound = torch.nextafter(bound, torch.tensor(np.inf))  # rounded up, to float32 as the scores are
    wide = (scores[:, -1] <= bound).numpy() & (k < n)
    idx, dist = np.empty(len(q), np.int64), np.empty(len(q), np.float64)
    rows = np.flatnonzero(~wide)
    idx[rows], dist[rows] = _nearest_of(q64[rows], ref64, np.repeat(np.arange(len(rows)), k),
                                        np.sort(cand.numpy()[rows], axis=1).ravel())
    rows = np.flatnonzero(wide)
    if len(rows):
        sub = torch.from_numpy(rows)
        r, c = (approx[sub] <= bound[sub][:, None]).nonzero(as_tuple=True)  # row-major
        idx[rows], dist[rows] = _nearest_of(q64[rows], ref64, r.numpy(), c.numpy())
    return idx, dist


def _nearest_of(q64: np.ndarray, ref64: np.ndarray, rows: np.ndarray,
                cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For candidate pairs (query ``rows``, reference ``cols``), sorted by row and then
    column with at least one per row: each row's nearest column (ties: the lowest) and its
    :func:`_sq_dist`."""
    if len(q64) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float64)
    dist = np.concatenate([_sq_dist(q64[rows[i:i + _PAIRS]], ref64[cols[i:i + _PAIRS]])
                           for i in range(0, len(rows), _PAIRS)])
    best = np.minimum.reduceat(dist, np.searchsorted(rows, np.arange(len(q64))))
    first = np.flatnonzero(dist == best[rows])
    _, at = np.unique(rows[first], return_index=True)  # the first best pair of each row
    return cols[first[at]].astype(np.int64), best


def _sq_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared L2 distance over the last axis in float64, summed in a fixed order (dimension 0,
    1, ...), so a pair of vectors gives the same bits whatever the shapes around it."""
    diff = a - b
    total = diff[..., 0] * diff[..., 0]
    for j in range(1, diff.shape[-1]):
        total += diff[..., j] * diff[..., j]
    return total


def _check_features(features: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(features, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] == 0 and what == "reference features":
        raise ValueError(f"{what} must be a non-empty 2-D array (got shape {x.shape})")
    if not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).any(axis=1).sum())
        raise ValueError(f"{what} contain NaN or infinite values in {bad} rows; check the probe and its input")
    return x
