"""Nearest reference example of every train example (paper §3.2, Algorithm 1 steps 4-7).

``NeighborMap(...).fit(reference_features)`` fits PCA on the reference features and indexes
the reduced reference points; ``query(train_features)`` maps any batch of train features to
the index of its nearest reference example (and the squared L2 distance in PCA space). Train
features never need to be held whole: query them batch by batch as they stream.

Neighbour search is ``"hnsw"`` (hnswlib, approximate, the default) or ``"exact"`` (blocked
matrix product in torch). The hnswlib graph is built single-threaded with a fixed seed, so
the same reference features always give the same graph and the same answers.
"""

from __future__ import annotations

import os

import numpy as np
import torch

__all__ = ["NeighborMap", "HNSW_DEFAULTS"]

# M: graph degree; ef_construction: build-time beam; ef: query-time beam (>= k). Chosen by
# measurement (tools/bench_neighbors.py, docs/benchmarks-neighbors.md): the fastest setting
# whose inherited importance agrees with exact search on >= 0.997 of 50k queries (1.28M
# queries into 50k references at d=64: agreement 0.998, recall@1 0.996).
HNSW_DEFAULTS = {"M": 16, "ef_construction": 100, "ef": 96}


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
        ref = _check_features(reference, "reference features")
        if self.n_components is not None and self.n_components < min(ref.shape):
            from sklearn.decomposition import PCA

            self.pca_ = PCA(n_components=self.n_components, svd_solver="full", random_state=self.seed).fit(ref)
        else:
            self.pca_ = None
        points = self.transform(ref)
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
        return self

    def transform(self, features: np.ndarray) -> np.ndarray:
        """Reduce features with the fitted PCA (identity when there is none), as float32."""
        x = _check_features(features, "features")
        if self.pca_ is not None and len(x) == 0:
            return np.zeros((0, self.pca_.n_components_), np.float32)
        if self.pca_ is not None:
            x = self.pca_.transform(x)
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
        return _exact_nearest(torch.from_numpy(x), self.index_, self.norms_, self.block_size)


def _exact_nearest(x: torch.Tensor, ref: torch.Tensor, ref_norms: torch.Tensor,
                   block: int) -> tuple[np.ndarray, np.ndarray]:
    idx, dist = [], []
    for start in range(0, len(x), block):
        q = x[start:start + block]
        # ||q - r||^2 = |r|^2 - 2 q.r + |q|^2: one fused matrix product; |q|^2 does not change the argmin
        best = torch.addmm(ref_norms, q, ref.T, alpha=-2.0).min(dim=1)
        idx.append(best.indices)
        dist.append((best.values + (q * q).sum(1)).clamp_min(0))
    return torch.cat(idx).numpy().astype(np.int64), torch.cat(dist).numpy().astype(np.float32)


def _check_features(features: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(features, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] == 0 and what == "reference features":
        raise ValueError(f"{what} must be a non-empty 2-D array (got shape {x.shape})")
    if not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).any(axis=1).sum())
        raise ValueError(f"{what} contain NaN or infinite values in {bad} rows; check the probe and its input")
    return x
