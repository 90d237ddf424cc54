"""Reference features reduced as they arrive: the scoring pass never holds them whole.

Each rank writes the feature batches it scores to an unnamed temporary file in the work dir
(:class:`FeatureSpill`) and hands back an id per row. After the pass, :func:`reduce_reference`
gathers the seeded sample of rows PCA is fitted on (:func:`~proxyds.selection.mapping.sample_rows`,
at most :func:`~proxyds.selection.mapping.pca_sample_size` rows), fits it, projects each rank's
file chunk by chunk, and gathers the reduced rows in split order. Memory holds the sample and
the reduced rows (50k x 64 floats for ImageNet's 50k x 2,048 features), never the features.

Rows come back in split order whatever the world size, and PCA is fitted on the same sample,
so every rank indexes the same points, and a reference split no larger than the sample gives
exactly what fitting on all its features at once gives.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from proxyds.selection.mapping import NeighborMap, pca_sample_size, sample_rows

__all__ = ["FeatureSpill", "reduce_reference"]

# An id is (rank << _RANK_SHIFT) | row in that rank's file.
_RANK_SHIFT = 40
_CHUNK_ROWS = 4096


class FeatureSpill:
    """One rank's float32 feature rows, appended to an unnamed temporary file in ``directory``
    (deleted when closed or when the process ends). ``add`` returns each row's id."""

    def __init__(self, directory: Path | str, rank: int = 0):
        Path(directory).mkdir(parents=True, exist_ok=True)
        self.rank, self.rows, self.dim = rank, 0, None
        self._file = tempfile.TemporaryFile(dir=directory, prefix="reference-features-")

    def add(self, feats: np.ndarray) -> tuple[np.ndarray]:
        """Append ``feats`` (n, d); returns (their ids,), as ``score_split``'s ``on_features`` does."""
        feats = np.ascontiguousarray(feats, dtype=np.float32)
        if feats.ndim != 2 or (self.dim is not None and feats.shape[1] != self.dim):
            raise ValueError(f"feature batches must be 2-D with {self.dim or 'a fixed number of'} columns "
                             f"(got shape {feats.shape})")
        self.dim = feats.shape[1]
        self._file.seek(0, 2)
        self._file.write(feats.tobytes())
        ids = (np.int64(self.rank) << _RANK_SHIFT) + np.arange(self.rows, self.rows + len(feats), dtype=np.int64)
        self.rows += len(feats)
        return (ids,)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop``, read with plain reads (no mapping, so nothing stays in this process)."""
        stop = min(stop, self.rows)
        self._file.seek(start * self.dim * 4)
        buf = self._file.read(max(0, stop - start) * self.dim * 4)
        return np.frombuffer(buf, np.float32).reshape(-1, self.dim or 0)

    def take(self, rows: np.ndarray) -> np.ndarray:
        """The rows ``rows``, in the order given (batches reach the file in the order the
        loader's workers finish them, not in split order): one sequential read of the file,
        a chunk at a time."""
        rows = np.asarray(rows, np.int64)
        order = np.argsort(rows, kind="stable")
        wanted = rows[order]
        out = np.empty((len(rows), self.dim or 0), np.float32)
        for start in range(0, self.rows if len(rows) else 0, _CHUNK_ROWS):
            lo, hi = np.searchsorted(wanted, [start, start + _CHUNK_ROWS])
            if hi > lo:
                out[order[lo:hi]] = self.read(start, start + _CHUNK_ROWS)[wanted[lo:hi] - start]
        return out

    def chunks(self, size: int = _CHUNK_ROWS):
        for start in range(0, self.rows, size):
            yield self.read(start, start + size)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "FeatureSpill":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def reduce_reference(spill: FeatureSpill, ids: np.ndarray, nmap: NeighborMap, world) -> np.ndarray:
    """Fit ``nmap``'s PCA on the seeded sample of the rows ``ids`` (every usable reference row's
    id, in split order, the same on every rank) and return all of them reduced, in that order.
    ``nmap`` is left ready for ``fit_index``."""
    ids = np.asarray(ids, np.int64)
    ranks, rows = ids >> _RANK_SHIFT, ids & ((1 << _RANK_SHIFT) - 1)
    chosen = sample_rows(len(ids), pca_sample_size(nmap.n_components), nmap.seed)
    mine = chosen[ranks[chosen] == spill.rank]
    parts = world.gather((mine, spill.take(rows[mine])))
    dim = max(values.shape[1] for _, values in parts)  # a rank that scored nothing has no width
    sample = np.empty((len(chosen), dim), np.float32)
    for where, values in parts:
        if len(where):  # a rank with none of the sample may have scored nothing at all
            sample[np.searchsorted(chosen, where)] = values
    nmap.fit_pca(sample)
    del sample, parts
    reduced = [nmap.transform(chunk) for chunk in spill.chunks()]
    local = np.concatenate(reduced) if reduced else nmap.transform(np.zeros((0, dim), np.float32))
    del reduced
    points = None
    for rank, part in enumerate(world.gather(local)):
        if points is None:
            points = np.empty((len(ids), part.shape[1]), np.float32)
        at = np.flatnonzero(ranks == rank)
        points[at] = part[rows[at]]
    return points
