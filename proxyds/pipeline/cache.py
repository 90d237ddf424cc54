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
import os
from pathlib import Path

import numpy as np

__all__ = ["StageCache", "fingerprint"]

log = logging.getLogger(__name__)


def fingerprint(*parts) -> str:
    """sha256 over JSON-encoded parts (bytes are hashed as they are)."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else json.dumps(part, sort_keys=True, default=str).encode())
        h.update(b"\0")
    return h.hexdigest()


class StageCache:
    """``load(stage, key)`` / ``save(stage, key, arrays, meta)`` under ``root/stages``."""

    def __init__(self, root: Path):
        self.root = Path(root) / "stages"

    def _path(self, stage: str, key: str) -> Path:
        return self.root / f"{stage}-{key[:20]}.npz"

    def load(self, stage: str, key: str) -> tuple[dict[str, np.ndarray], dict] | None:
        path = self._path(stage, key)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            meta = json.loads(bytes(arrays.pop("__meta__")).decode())
        except (OSError, ValueError, KeyError) as err:  # damaged entry: recompute
            log.warning("ignoring damaged cache entry %s (%s)", path, err)
            return None
        log.info("stage %s: reusing %s", stage, path.name)
        return arrays, meta

    def save(self, stage: str, key: str, arrays: dict[str, np.ndarray], meta: dict | None = None) -> None:
        path = self._path(stage, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        payload = dict(arrays, __meta__=np.frombuffer(json.dumps(meta or {}).encode(), dtype=np.uint8))
        with open(tmp, "wb") as f:
            np.savez(f, **payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
