"""The dataset card (``README.md``): what ``datasets.load_dataset(OUT)`` and the Hub read.

Written with ``huggingface_hub``'s ``DatasetCard`` / ``DatasetCardData``, and its
``dataset_info`` with ``datasets``' own ``DatasetInfosDict.to_dataset_card_data`` (what
``push_to_hub`` writes), so the YAML is the one both libraries parse:

* ``configs`` ("Manual configuration" in the ``datasets`` docs) maps split names to file
  patterns, so the proxy loads as ``train`` and the reference split under its own name
  without any loading script, whatever the shard format;
* ``dataset_info.features`` gives every reader the columns' types: a WebDataset proxy's
  ``cls`` loads as a ``ClassLabel`` with its names instead of a bare int;
* ``dataset_info.splits`` the row count (``load_dataset`` checks it) and bytes of each split;
* ``license``, ``task_categories``, ``size_categories``, ``pretty_name`` and ``tags`` for the Hub.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

from proxyds.config import validate_license
from proxyds.sinks.parquet import check_split_name

__all__ = ["write_card", "size_category"]

TAGS = ("proxyds", "data-proxy")
# The Hub's size_categories, by number of examples (upper bounds exclusive).
_SIZES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
          (10**7, "1M<n<10M"), (10**8, "10M<n<100M"), (10**9, "100M<n<1B"), (10**10, "1B<n<10B"),
          (10**11, "10B<n<100B"), (10**12, "100B<n<1T"))


def write_card(
    out_dir: Path,
    *,
    data_files: Mapping[str, Sequence[str]],
    summary_md: str,
    pretty_name: str = "proxyds proxy",
    checksums: Mapping[str, tuple[int, str]] | None = None,
    features=None,
    split_sizes: Mapping[str, tuple[int, int]] | None = None,
    license: str | Sequence[str] | None = None,
    task_categories: Sequence[str] = (),
) -> Path:
    """Write ``out_dir/README.md``: the YAML metadata (module doc), then ``summary_md``.

    ``data_files`` maps each split to glob patterns relative to ``out_dir``, e.g.
    ``{"train": ["data/train-*"], "validation": ["data/validation-*"]}``; splits keep the
    given order. ``features`` (``datasets.Features``) are the columns as loaded;
    ``split_sizes`` maps each split to ``(num_examples, num_bytes)``, the bytes being its
    files' (``datasets`` recomputes its in-memory size when it loads), and gives
    ``size_categories`` from the total examples. ``license`` is one Hub license identifier or
    a list of them. The same arguments always give the same bytes.

    ``checksums`` (relative path -> (bytes, sha256)) of the data files go into the card's
    ``dataset_info.download_checksums``. ``datasets`` hashes the card into its cache key, and
    without them two different outputs in directories of the same name and layout share a
    cache entry, so ``load_dataset`` would return the first one's data for the second.
    """
    from huggingface_hub import DatasetCard, DatasetCardData

    configs = [{"config_name": "default", "data_files": _data_file_entries(data_files)}]
    if not isinstance(pretty_name, str) or not pretty_name.strip() or "\n" in pretty_name:
        raise ValueError(f"pretty_name must be a non-empty single line, got {pretty_name!r}")
    if split_sizes is not None and set(split_sizes) != set(data_files):
        raise ValueError(f"split_sizes must give (num_examples, num_bytes) for exactly the splits {list(data_files)} "
                         f"(got {list(split_sizes)})")
    if isinstance(task_categories, str):
        raise ValueError(f"task_categories must be a list of Hub task names, got the string {task_categories!r}")
    total = None if split_sizes is None else sum(int(n) for n, _ in split_sizes.values())
    if license is not None:
        license = validate_license(license) if isinstance(license, str) else [validate_license(x) for x in license]
    data = DatasetCardData(license=license,
                           task_categories=list(task_categories) or None,
                           size_categories=None if total is None else [size_category(total)],
                           pretty_name=pretty_name, tags=list(TAGS), configs=configs)
    info = _dataset_info(features, data_files, split_sizes)
    if info is not None:
        from datasets.info import DatasetInfosDict

        DatasetInfosDict({"default": info}).to_dataset_card_data(data)
    if checksums:
        data["dataset_info"] = {**data.get("dataset_info", {}), "download_checksums": {
            path: {"num_bytes": int(size), "checksum": digest} for path, (size, digest) in sorted(checksums.items())}}
    body = summary_md.strip("\n")
    card = DatasetCard(f"---\n{data.to_yaml()}\n---\n" + (f"\n{body}\n" if body else ""))
    out = Path(out_dir) / "README.md"
    card.save(out)
    return out


def size_category(num_examples: int) -> str:
    """The Hub's ``size_categories`` value for a dataset of ``num_examples`` rows."""
    if isinstance(num_examples, bool) or not isinstance(num_examples, int) or num_examples < 0:
        raise ValueError(f"num_examples must be an integer >= 0, got {num_examples!r}")
    return next((name for bound, name in _SIZES if num_examples < bound), "n>1T")


def _data_file_entries(data_files: Mapping[str, Sequence[str]]) -> list[dict]:
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
        entries.append({"split": split, "path": patterns[0] if len(patterns) == 1 else list(patterns)})
    return entries


def _dataset_info(features, data_files, split_sizes):
    """``datasets.DatasetInfo`` of the features and split sizes given, or None when neither is."""
    if features is None and split_sizes is None:
        return None
    import datasets

    if features is not None and not isinstance(features, datasets.Features):
        raise ValueError(f"features must be a datasets.Features, got {type(features).__name__}")
    splits = None
    if split_sizes is not None:
        splits = datasets.SplitDict()
        for split in data_files:  # the card's split order
            n, nbytes = split_sizes[split]
            if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in (n, nbytes)):
                raise ValueError(f"split_sizes[{split!r}] must be (num_examples, num_bytes), integers >= 0, "
                                 f"got {split_sizes[split]!r}")
            splits.add(datasets.SplitInfo(split, num_bytes=nbytes, num_examples=n))
    download_size = None if split_sizes is None else sum(b for _, b in split_sizes.values())
    return datasets.DatasetInfo(features=features, splits=splits, download_size=download_size)


def _check_pattern(split: str, pattern: str) -> None:
    """Patterns must stay inside OUT: relative, POSIX, no '..' (the card travels with the data)."""
    p = PurePosixPath(pattern) if isinstance(pattern, str) else None
    if p is None or not pattern or p.is_absolute() or ".." in p.parts or "\\" in pattern or re.match(r"^\w+://", pattern):
        raise ValueError(
            f"data_files[{split!r}] pattern {pattern!r} is invalid: use a relative POSIX path inside the "
            f"output directory without '..', e.g. 'data/{split}-*'"
        )
