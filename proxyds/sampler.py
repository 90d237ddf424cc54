"""Read the ORIGINAL dataset through a manifest: a distributed weighted sampler and a WebDataset stage.

:class:`ManifestSampler` is the distributed weighted sampler PyTorch lacks (pytorch#77154):
each epoch it draws a fresh weighted proxy of the original train split from the manifest's
``keep_prob`` and hands every rank a disjoint, equal-length slice of it, so a DDP job trains
on a new proxy each epoch without writing one. The global draw depends only on
``(seed, epoch)`` and the manifest, never on the rank or the world size:

1. draw ``num_samples`` usable rows (status ``ok``, ``keep_prob > 0`` and, when the column is
   present, ``proxy_label >= 0``: a class dropped by label reduction is never drawn): without
   replacement by Efraimidis–Spirakis keys over ``hash_uniforms(keys, seed')`` with ``seed'``
   derived from (seed, epoch) (:mod:`proxyds.selection.sampling`), so a row's fate depends on its key,
   not on its position; with replacement by ``np.random.default_rng((seed, epoch)).choice``;
2. shuffle the drawn set with the same generator (``shuffle=False``: manifest order instead);
3. rank ``r`` of ``w`` takes positions ``r::w``. When ``w`` does not divide the total, like
   ``torch.utils.data.DistributedSampler``: ``drop_last=False`` pads by repeating the draw
   from its start (a few examples are seen twice that epoch), ``drop_last=True`` drops the
   tail (a few drawn examples are not seen).

The world is ``num_replicas``/``rank`` when given, else the ``torch.distributed`` process
group's; a launcher's ``WORLD_SIZE > 1`` with neither is an error, not a silent rank 0 of 1
(every rank would train on the same data).

:func:`select_manifest` is a WebDataset pipeline stage (webdataset ``filters.py`` style: the
private generator :func:`_select_keys` plus a picklable curried :func:`select_keys`) that
keeps only the manifest's selected keys when reading the original tar shards::

    ds = wds.WebDataset(urls).compose(select_manifest("proxy/"))
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch
from torch.utils.data import Sampler

from proxyds.manifest import read_manifest
from proxyds.selection.sampling import hash_uniforms, proxy_size, weighted_topk

__all__ = ["ManifestSampler", "select_manifest", "select_keys"]


def _columns(manifest, names: Iterable[str], optional: Iterable[str] = ()) -> dict[str, np.ndarray]:
    """Columns of a manifest given as a path (proxy dir or parquet), a pyarrow Table or a dict of arrays."""
    if isinstance(manifest, (str, Path)):
        manifest = read_manifest(manifest)
    if isinstance(manifest, pa.Table):
        get, have = (lambda n: manifest.column(n).to_numpy(zero_copy_only=False)), set(manifest.column_names)
    elif isinstance(manifest, Mapping):
        get, have = (lambda n: np.asarray(manifest[n])), set(manifest)
    else:
        raise ValueError(f"manifest must be a path, a pyarrow Table or a dict of arrays "
                         f"(got {type(manifest).__name__})")
    missing = set(names) - have
    if missing:
        raise ValueError(f"manifest is missing columns {sorted(missing)} (has {sorted(have)})")
    cols = {n: get(n) for n in [*names, *(o for o in optional if o in have)]}
    lengths = {n: len(c) for n, c in cols.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"manifest columns differ in length: {lengths}")
    return cols


def _epoch_seed(seed: int, epoch: int) -> int:
    """A 64-bit hash seed for (seed, epoch), distinct from the build's own draw with ``seed``."""
    hi, lo = np.random.SeedSequence([seed, epoch, 0x5A3]).generate_state(2, dtype=np.uint32)
    return (int(hi) << 32) | int(lo)


def _check_int(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low} (got {value!r})")
    return int(value)


def _drawable(cols: dict[str, np.ndarray]) -> np.ndarray:
    """Rows that may be drawn: ``keep_prob > 0``, status ``ok`` and a class label reduction kept.

    ``proxy_label`` is checked as well as ``keep_prob``: manifests written by older versions
    gave the classes label reduction dropped a positive keep_prob.
    """
    weights = cols["keep_prob"].astype(np.float64)
    bad = ~np.isfinite(weights) | (weights < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"keep_prob must be finite and >= 0: {int(bad.sum())} bad values, first "
                         f"{float(weights[i])!r} at key {str(cols['key'][i])!r}")
    usable = weights > 0
    if "status" in cols:
        # compared row by row: astype(str) would widen every row to the longest skip reason
        usable &= np.fromiter((s == "ok" for s in cols["status"]), dtype=bool, count=len(weights))
    if "proxy_label" in cols:
        usable &= cols["proxy_label"].astype(np.int64) >= 0
    if not usable.any():
        raise ValueError(f"manifest has no drawable rows: none of its {len(weights)} rows has status 'ok', "
                         "keep_prob > 0 and a kept class (proxy_label >= 0)")
    return usable


def _no_world(why: str) -> RuntimeError:
    return RuntimeError(f"{why}, but no torch.distributed process group is initialised, so ManifestSampler cannot "
                        "tell which slice is this process's (as rank 0 of 1 every process would train on the same "
                        "data): init the process group (torch.distributed.init_process_group) before creating the "
                        "sampler, or pass num_replicas= and rank=")


def _world(num_replicas: int | None, rank: int | None) -> tuple[int, int]:
    """(num_replicas, rank) like ``DistributedSampler``: the arguments, else the process group.

    Without a group a missing ``num_replicas`` is 1 and a missing ``rank`` 0, unless the
    environment (``WORLD_SIZE``, set by torchrun and other launchers) or ``num_replicas`` says
    there are several processes: then guessing would give every process the same slice.
    """
    dist = torch.distributed
    live = dist.is_available() and dist.is_initialized()
    if num_replicas is None:
        if live:
            num_replicas = dist.get_world_size()
        else:
            env = os.environ.get("WORLD_SIZE", "").strip() or "1"
            if env != "1":
                where = f"WORLD_SIZE={env!r} RANK={os.environ.get('RANK', '<unset>')!r} in the environment"
                if not env.isdigit():
                    raise _no_world(f"{where} (not an integer)")
                if int(env) > 1:
                    raise _no_world(where)
            num_replicas = 1
    num_replicas = _check_int("num_replicas", num_replicas, 1)
    if rank is None:
        if live:
            rank = dist.get_rank()
        elif num_replicas > 1:
            raise _no_world(f"num_replicas={num_replicas} was given without rank=")
        else:
            rank = 0
    rank = _check_int("rank", rank, 0)
    if rank >= num_replicas:
        raise ValueError(f"rank must be in 0..{num_replicas - 1} (got {rank})")
    return num_replicas, rank


def _base_seed(seed: int | None, generator: torch.Generator | None) -> int:
    """``seed`` (default 0), or one 63-bit draw from ``generator`` when no seed is given."""
    if generator is None:
        return _check_int("seed", 0 if seed is None else seed, 0)
    if seed is not None:
        raise ValueError(f"give seed or generator, not both (got seed={seed!r} and a generator)")
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator (got {type(generator).__name__})")
    return int(torch.randint(0, 2**63 - 1, (), generator=generator))


class ManifestSampler(Sampler[int]):
    """Each epoch a fresh weighted proxy of the ORIGINAL train split; this rank's slice of it.

    Yields indices into the original dataset (the manifest's ``index`` column), so it plugs
    into ``DataLoader(original_dataset, sampler=...)``. Call :meth:`set_epoch` before every
    epoch, as with ``DistributedSampler``; every rank must use the same ``seed``.

    ``manifest``: a proxy directory, a ``manifest.parquet`` path, a pyarrow Table or a dict of
    arrays with at least ``index``, ``key`` and ``keep_prob`` (``status``, ``proxy_label`` and
    ``selected`` are used when present). ``num_samples`` (global, all ranks together) defaults
    to the manifest's number of selected rows; ``ratio`` gives it as a fraction of the usable
    rows instead. ``len(sampler)`` is this rank's count.

    ``num_replicas``/``rank``: as ``DistributedSampler``, the process group's unless given.
    With no group they default to 1/0, except that ``WORLD_SIZE > 1`` in the environment (a
    launcher ran several processes) or ``num_replicas > 1`` without ``rank`` is a RuntimeError
    rather than every process silently training on rank 0's slice.

    ``shuffle=False`` serves each epoch's drawn rows in manifest order instead of permuted
    (the draw itself is still weighted and fresh per epoch).

    Seeding follows ``DistributedSampler`` (``seed`` + :meth:`set_epoch`), not
    ``RandomSampler``'s per-iteration draws from a ``generator``: every rank must draw the
    same global proxy, so the draw is a pure function of (seed, epoch). ``generator`` is
    accepted for code written for torch's other samplers: when ``seed`` is not given, one
    number drawn from it once, here, is the seed, so seed the generator identically on every
    rank (``torch.Generator().manual_seed(s)``). Neither given: seed 0.
    """

    def __init__(self, manifest, *, num_samples: int | None = None, ratio: float | None = None,
                 replacement: bool = False, shuffle: bool = True, seed: int | None = None,
                 generator: torch.Generator | None = None, num_replicas: int | None = None,
                 rank: int | None = None, drop_last: bool = False):
        cols = _columns(manifest, ("index", "key", "keep_prob"), optional=("status", "selected", "proxy_label"))
        n = len(cols["index"])
        if n == 0:
            raise ValueError("manifest is empty: no rows to draw from")
        usable = _drawable(cols)
        self.index_ = cols["index"].astype(np.int64)[usable]
        self.keys_ = [str(k) for k in cols["key"][usable]]
        self.weights_ = cols["keep_prob"].astype(np.float64)[usable]

        if num_samples is not None and ratio is not None:
            raise ValueError(f"give num_samples or ratio, not both (got {num_samples!r} and {ratio!r})")
        if ratio is not None:
            num_samples = proxy_size(ratio, len(self.index_))
        elif num_samples is None:
            if "selected" not in cols:
                raise ValueError("manifest has no 'selected' column: pass num_samples or ratio")
            num_samples = int(np.count_nonzero(cols["selected"]))
            if num_samples == 0:
                raise ValueError("manifest selects no rows: pass num_samples or ratio")
        self.num_samples = _check_int("num_samples", num_samples, 1)
        if not replacement and self.num_samples > len(self.index_):
            raise ValueError(f"num_samples={self.num_samples} exceeds the {len(self.index_)} drawable rows "
                             f"(status 'ok', keep_prob > 0, a kept class); lower it or pass replacement=True")
        self.replacement, self.shuffle = bool(replacement), bool(shuffle)
        self.seed = _base_seed(seed, generator)
        self.num_replicas, self.rank = _world(num_replicas, rank)
        self.drop_last = bool(drop_last)
        if self.drop_last and self.num_samples < self.num_replicas:
            raise ValueError(f"drop_last=True with num_samples={self.num_samples} < num_replicas="
                             f"{self.num_replicas} leaves every rank empty")
        per_rank = self.num_samples / self.num_replicas
        self.per_rank = math.floor(per_rank) if self.drop_last else math.ceil(per_rank)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw epoch ``epoch``'s proxy on the next iteration (same on every rank)."""
        self.epoch = _check_int("epoch", epoch, 0)

    def draw(self, epoch: int | None = None) -> np.ndarray:
        """The global proxy of ``epoch`` (default: the current one): original indices in serving order, unpadded."""
        epoch = self.epoch if epoch is None else _check_int("epoch", epoch, 0)
        rng = np.random.default_rng((self.seed, epoch))
        if self.replacement:
            rows = rng.choice(len(self.weights_), size=self.num_samples, p=self.weights_ / self.weights_.sum())
        else:
            uniforms = hash_uniforms(self.keys_, _epoch_seed(self.seed, epoch))
            rows = weighted_topk(self.weights_, self.num_samples, uniforms)
        return self.index_[rng.permutation(rows) if self.shuffle else np.sort(rows)]

    def __iter__(self) -> Iterator[int]:
        indices = self.draw()
        total = self.per_rank * self.num_replicas
        if total > len(indices):  # pad by repeating from the start (cycling when the draw is tiny)
            indices = np.resize(indices, total)
        return iter(indices[self.rank:total:self.num_replicas].tolist())

    def __len__(self) -> int:
        return self.per_rank


def _select_keys(data: Iterable[dict], keys: frozenset[str]) -> Iterator[dict]:
    """Yield the samples whose ``__key__`` is in ``keys``."""
    for sample in data:
        if sample["__key__"] in keys:
            yield sample


def select_keys(keys: Iterable[str]):
    """A pipeline stage (``data -> data``) keeping the samples whose ``__key__`` is in ``keys``; picklable."""
    return functools.partial(_select_keys, keys=frozenset(map(str, keys)))


def select_manifest(manifest, *, column: str = "selected"):
    """A WebDataset stage keeping only the manifest rows where boolean ``column`` is true.

    Use on the ORIGINAL shards: ``wds.WebDataset(urls).compose(select_manifest(out))`` or as a
    ``wds.DataPipeline`` stage. Keys are the manifest's ``key`` column (for a ``wds:`` source,
    the tar keys).
    """
    cols = _columns(manifest, ("key", column))
    mask = cols[column]
    if mask.dtype != np.bool_:
        raise ValueError(f"manifest column {column!r} must be boolean (got {mask.dtype})")
    return select_keys(cols["key"][mask])
