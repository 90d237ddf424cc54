"""The dataset card (``README.md``) that makes ``datasets.load_dataset(OUT)`` find the splits.

``datasets`` reads the YAML front matter of a directory's README; its ``configs`` entry
("Manual configuration" in the ``datasets`` docs) maps split names to file patterns, so
the proxy loads as ``train`` and the reference split as ``test`` without any loading
script, whatever the shard format.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

import yaml

from proxyds.sinks.parquet import check_split_name

__all__ = ["write_card"]

TAGS = ("proxyds", "data-proxy")


def write_card(
    out_dir: Path,
    *,
    data_files: Mapping[str, Sequence[str]],
    summary_md: str,
    pretty_name: str = "proxyds proxy",
    checksums: Mapping[str, tuple[int, str]] | None = None,
) -> Path:
    """Write ``out_dir/README.md``: YAML front matter (configs, pretty_name, tags), then ``summary_md``.

    ``data_files`` maps each split to glob patterns relative to ``out_dir``, e.g.
    ``{"train": ["data/train-*"], "test": ["data/test-*"]}``. Splits keep the given order.
    The same arguments always give the same bytes.

    ``checksums`` (relative path -> (bytes, sha256)) of the data files go into the card's
    ``dataset_info.download_checksums``. ``datasets`` hashes the card into its cache key, and
    without them two different outputs in directories of the same name and layout share a
    cache entry, so ``load_dataset`` would return the first one's data for the second.
    """
    if not data_files:
        raise ValueError("data_files is empty; give at least one split, e.g. {'train': ['data/train-*']}")
    entries = []
    for split, patterns in data_files.items():
        check_split_name(split)
        if isinstance(patterns, str) or not patterns:
            raise ValueError(
                f"data_files[{split!r}] must be a non-empty list of patterns, got {patterns!r} "
                f"(e.g. ['data/{split}-*'])"
            )
        for pattern in patterns:
            _check_pattern(split, pattern)
        path = patterns[0] if len(patterns) == 1 else list(patterns)
        entries.append({"split": split, "path": path})
    if not isinstance(pretty_name, str) or not pretty_name.strip() or "\n" in pretty_name:
        raise ValueError(f"pretty_name must be a non-empty single line, got {pretty_name!r}")
    meta = {
        "configs": [{"config_name": "default", "data_files": entries}],
        "pretty_name": pretty_name,
        "tags": list(TAGS),
    }
    if checksums:
        meta["dataset_info"] = {"config_name": "default", "download_checksums": {
            path: {"num_bytes": int(size), "checksum": digest} for path, (size, digest) in sorted(checksums.items())}}
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, default_flow_style=False, width=1000)
    body = summary_md.strip("\n")
    text = f"---\n{front}---\n\n{body}\n" if body else f"---\n{front}---\n"
    out = Path(out_dir) / "README.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8", newline="\n")
    return out


def _check_pattern(split: str, pattern: str) -> None:
    """Patterns must stay inside OUT: relative, POSIX, no '..' (the card travels with the data)."""
    p = PurePosixPath(pattern) if isinstance(pattern, str) else None
    if p is None or not pattern or p.is_absolute() or ".." in p.parts or "\\" in pattern or re.match(r"^\w+://", pattern):
        raise ValueError(
            f"data_files[{split!r}] pattern {pattern!r} is invalid: use a relative POSIX path inside the "
            f"output directory without '..', e.g. 'data/{split}-*'"
        )
