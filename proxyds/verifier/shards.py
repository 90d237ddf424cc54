"""Reading an output's shards back for ``proxyds verify``: keys and labels of every tar and
parquet shard, and tar members that could escape the directory on extraction."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pyarrow.parquet as pq

__all__ = ["read_tars", "read_parquet", "bad_member"]

_MAX_LABEL_BYTES = 64


def read_tars(out: Path, paths: list[Path], label_field: str, report):
    """Keys (in order), labels (None when missing) and examples per shard of WebDataset tars;
    None when a tar cannot be read. Every member's name and type is checked on the way."""
    keys, labels, per_shard = [], [], []
    members = 0
    for path in paths:
        rel = path.relative_to(out).as_posix()
        before = len(keys)
        try:
            with tarfile.open(path, "r:") as tar:
                for m in tar:
                    members += 1
                    bad = bad_member(m)
                    if bad:
                        report.add(f"{rel}: member {m.name!r} {bad}")
                        continue
                    key, _, fld = m.name.partition(".")
                    if len(keys) == before or keys[-1] != key:
                        keys.append(key)
                        labels.append(None)
                    if fld == label_field:
                        labels[-1] = _read_label(tar, m, rel, report)
        except (tarfile.TarError, OSError, EOFError) as err:
            report.add(f"{rel}: cannot be read as a tar: {type(err).__name__}: {err}")
            return None
        per_shard.append(len(keys) - before)
    report.checked["tar_members"] = report.checked.get("tar_members", 0) + members
    missing = [k for k, lab in zip(keys, labels) if lab is None]
    if missing:
        report.add(f"{len(missing)} examples have no readable {label_field!r} label, e.g. key {missing[0]!r}")
    return keys, labels, per_shard


def bad_member(m: tarfile.TarInfo) -> str | None:
    """Why a tar member is unsafe or unreadable as a WebDataset field, or None."""
    name = m.name
    if not m.isreg():
        return "is not a regular file (links, folders and devices are never written by proxyds)"
    if not name or "/" in name or "\\" in name or "\x00" in name or name in (".", ".."):
        return "is not a plain relative file name (it could write outside the extraction folder)"
    key, dot, fld = name.partition(".")
    if not key or not dot or not fld:
        return "is not named KEY.FIELD (WebDataset readers would drop or misgroup it)"
    return None


def _read_label(tar: tarfile.TarFile, m: tarfile.TarInfo, rel: str, report) -> int | None:
    if m.size > _MAX_LABEL_BYTES:
        report.add(f"{rel}: label member {m.name!r} is {m.size} bytes, not a short integer")
        return None
    text = tar.extractfile(m).read().decode("utf-8", errors="replace").strip()
    try:
        return int(text)
    except ValueError:
        report.add(f"{rel}: label member {m.name!r} holds {text[:20]!r}, not an integer")
        return None


def read_parquet(out: Path, paths: list[Path], label_field: str, with_labels: bool, record: dict, report):
    """Keys (when the build had a key column), labels (if asked) and rows per shard; None when
    a shard cannot be read."""
    key_column = record["config"].get("key_column")
    keys, labels, per_shard = ([] if key_column and with_labels else None), ([] if with_labels else None), []
    for path in paths:
        rel = path.relative_to(out).as_posix()
        try:
            pf = pq.ParquetFile(path)
            per_shard.append(pf.metadata.num_rows)
            if not with_labels:
                continue
            names = pf.schema_arrow.names
            if label_field not in names:
                report.add(f"{rel}: no label column {label_field!r} (columns: {', '.join(names)})")
                return None
            if keys is not None and key_column not in names:
                keys = None
            cols = [label_field] + ([key_column] if keys is not None else [])
            for batch in pf.iter_batches(columns=cols, batch_size=65_536):
                labels.extend(batch.column(label_field).to_pylist())
                if keys is not None:
                    keys.extend(str(k) for k in batch.column(key_column).to_pylist())
        except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid is a ValueError
            report.add(f"{rel}: cannot be read as parquet: {type(err).__name__}: {err}")
            return None
    return keys, labels, per_shard


# -- 4. the readers downstream code uses -------------------------------------------------------
