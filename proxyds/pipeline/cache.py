"""The work dir's stage cache: each finished stage's arrays, keyed by a fingerprint of
everything that stage depends on, so a killed build resumes without redoing finished
stages and a changed input or setting invalidates exactly the stages it affects.

Entries are ``.npz`` files written to a temporary name and renamed into place, so a kill
mid-write never leaves a half entry; they are read with ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import zipfile
import zlib
from pathlib import Path

import numpy as np

from proxyds.sinks.atomic import atomic_write

__all__ = ["StageCache", "fingerprint"]

log = logging.getLogger(__name__)

# Part of every entry's file name: bump it when what a stage saves changes layout, so entries
# written by an older version are recomputed, never misread. (The keys themselves name what a
# stage depends on, and feed later stages' keys and probe file names: they stay as they are.)
# 2: keys and statuses as StringColumn/StatusColumn arrays; the reference pass saves PCA + points.
FORMAT = 2


def fingerprint(*parts) -> str:
    """sha256 over JSON-encoded parts (bytes are hashed as they are)."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else json.dumps(part, sort_keys=True, default=str).encode())
        h.update(b"\0")
    return h.hexdigest()


# What reading a damaged entry raises: a zip that is truncated or not a zip (BadZipFile, EOFError),
# a member with a bad header, CRC or deflate stream (BadZipFile, ValueError, zlib.error), a
# missing __meta__ (KeyError), a meta that is not UTF-8 JSON (both ValueErrors), unreadable
# bytes (OSError).
_DAMAGED = (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, zlib.error)


class StageCache:
    """``load(stage, key)`` / ``save(stage, key, arrays, meta)`` under ``root/stages``."""

    def __init__(self, root: Path):
        self.root = Path(root) / "stages"

    def _path(self, stage: str, key: str) -> Path:
        return self.root / f"{stage}-{fingerprint(FORMAT, key)[:20]}.npz"

    def load(self, stage: str, key: str) -> tuple[dict[str, np.ndarray], dict] | None:
        """The stage's arrays and meta, or None when there is no entry or it is damaged.

        A damaged entry (truncated, overwritten, not a zip, bad JSON meta) is a warning and
        None, so the caller recomputes the stage and ``save`` replaces the entry.
        """
        path = self._path(stage, key)
        if not path.exists():
            return None
        try:
            arrays = _read_npz(path)
            meta = json.loads(bytes(arrays.pop("__meta__")).decode())
            if not isinstance(meta, dict):
                raise ValueError("meta is not a JSON object")
        except _DAMAGED as err:  # damaged entry: recompute
            log.warning("ignoring damaged cache entry %s (%s: %s); recomputing the stage", path,
                        type(err).__name__, err)
            return None
        log.info("stage %s: reusing %s", stage, path.name)
        return arrays, meta

    def save(self, stage: str, key: str, arrays: dict[str, np.ndarray], meta: dict | None = None) -> None:
        payload = dict(arrays, __meta__=np.frombuffer(json.dumps(meta or {}).encode(), dtype=np.uint8))
        atomic_write(self._path(stage, key), lambda tmp: _savez(tmp, payload), durable=True)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` at ``path``; ValueError when it holds a bare ``.npy``."""
    z = np.load(path, allow_pickle=False)
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise ValueError("an .npy array, not an .npz archive")
    with z:
        return {k: z[k] for k in z.files}


def _savez(path: Path, payload: dict) -> None:
    with open(path, "wb") as f:
        np.savez(f, **payload)
