"""``hf:`` source: a HuggingFace dataset read with ``datasets`` in streaming mode.

The location is a local dataset directory (anything ``datasets.load_dataset(DIR)``
understands, e.g. ``data/train-*.parquet`` + ``data/test-*.parquet``), a file pattern with a
``{split}`` placeholder (``/data/cifar/{split}-*.parquet``), or a Hub name (which needs the
network and is never used by proxyds' own tests). It may also be a URL fsspec reads
(``s3://bucket/cifar``, ``gs://…``, ``hf://datasets/…``): a folder URL's files are found by
the same rules ``datasets`` applies to a local directory (``data/train-*.parquet``,
``train/*.parquet``, …; its README's ``configs`` are not read), a pattern URL by its glob.

A local directory is checked before ``datasets`` sees it (:func:`check_dataset_dir`): a
dataset loading script is refused, never run, and the dataset card's YAML header must load
with PyYAML's safe loader.

Examples are read shard by shard, in file order, so the order and the keys are the same on
every run. Without a key column, an example's key is ``{split}-{index:08d}``, its position in
the split.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterator

import numpy as np

from proxyds.sources import remote
from proxyds.sources.base import Example, SplitInfo

__all__ = ["HFSource", "check_dataset_dir"]

_FORMATS = {".parquet": "parquet", ".arrow": "arrow", ".csv": "csv", ".json": "json", ".jsonl": "json"}


class HFSource:
    """One split of a HuggingFace dataset, streamed: ``datasets`` resolves the files, splits
    and features; local parquet shards are then read row group by row group with pyarrow
    (the same values ``datasets`` gives with decoding off), anything else with ``datasets``
    streaming."""

    read_batch = 1024  # parquet rows converted at a time by selected_examples

    def __init__(self, location: str, split: str, *, label_column: str = "label", key_column: str | None = None):
        import datasets

        self.location, self.split = location, split
        self.label_column, self.key_column = label_column, key_column
        self._remote = remote.is_remote(location)
        if self._remote or "{split}" in location:
            files = _split_files(location, split)
            ext = os.path.splitext(files[0])[1]
            if ext not in _FORMATS:
                raise ValueError(f"hf:{location}: cannot read {ext!r} files; known: {', '.join(sorted(_FORMATS))}")
            self._ds = datasets.load_dataset(_FORMATS[ext], data_files={split: files}, split=split, streaming=True)
            self._files = files
        else:
            if location.startswith(("/", "./", "../", "~")) and not os.path.exists(os.path.expanduser(location)):
                raise FileNotFoundError(f"hf:{location}: no such directory")
            check_dataset_dir(location)
            try:
                self._ds = datasets.load_dataset(location, split=split, streaming=True)
                files = datasets.load_dataset_builder(location).config.data_files or {}
            except ValueError as err:
                if "split" in str(err).lower():  # datasets: 'Unknown split "x". Should be one of [...]'
                    raise ValueError(f"hf:{location}: split {split!r} not found ({err})") from err
                raise ValueError(f"hf:{location}: datasets cannot read it ({err})") from err
            except (TypeError, AttributeError, KeyError) as err:  # datasets on a malformed card's metadata
                raise ValueError(f"hf:{location}: datasets cannot read it ({type(err).__name__}: {err}); "
                                 f"check its README.md card and data files") from err
            self._files = list(files.get(split, []))
        features = self._ds.features  # as stored (an Image column stays Image(decode=True) in the output)
        self._ds = self._ds.decode(False)  # images stay {bytes, path}: original bytes, decoded only by proxyds
        if features is None:
            raise ValueError(f"hf:{location}: split {split!r} has no known features (schema); write it as parquet")
        if label_column not in features:
            raise ValueError(f"hf:{location}: label column {label_column!r} not in split {split!r}; "
                             f"columns: {', '.join(features)} (pass --label-column)")
        if key_column is not None and key_column not in features:
            raise ValueError(f"hf:{location}: key column {key_column!r} not in split {split!r}; columns: {', '.join(features)}")
        label = features[label_column]
        names = _parquet_class_names(self.files, label_column)
        if names is None:
            names = tuple(label.names) if hasattr(label, "names") else ()
        self.info = SplitInfo(format="hf", label_column=label_column, class_names=names, features=features)

    @property
    def files(self) -> list[str]:
        """Data files (local paths, or URLs for a URL location) in read order (empty for a Hub
        dataset given by name)."""
        if self._remote:
            return list(self._files)
        return [str(f) for f in self._files if os.path.exists(str(f))]

    @property
    def shards(self) -> list[str]:
        n = self._ds.num_shards
        if len(self._files) == n:
            return [os.path.basename(str(f)) for f in self._files]
        return [f"shard-{i:05d}" for i in range(n)]

    @property
    def worker_safe(self) -> bool:
        """Whether shards can be read in DataLoader workers: parquet shards (local, or URLs through
        fsspec) are read with pyarrow, one row group at a time. ``datasets`` streaming is not: inside a torch worker it
        splits its shards between the workers on its own, so a worker handed one shard reads
        nothing (it warns "Too many dataloader workers" and drops the data)."""
        files = self.files
        return bool(files) and len(files) == self._ds.num_shards and all(f.endswith(".parquet") for f in files)

    def shard_sizes(self) -> list[int] | None:
        """Rows per shard from the parquet footers (no data read), or None when not parquet."""
        if not self.worker_safe:
            return None
        sizes = []
        for f in self.files:
            with _parquet(f) as pf:
                sizes.append(pf.metadata.num_rows)
        return sizes

    @property
    def keys_from_position(self) -> bool:
        return self.key_column is None

    def _rows(self, index: int) -> Iterator[dict]:
        if self.worker_safe:
            with _parquet(self.files[index]) as pf:
                for batch in pf.iter_batches(batch_size=256):
                    yield from batch.to_pylist()
        else:
            yield from self._ds.shard(num_shards=self._ds.num_shards, index=index, contiguous=True)

    def shard_examples(self, index: int, start: int) -> Iterator[Example]:
        """Examples of shard ``index``; ``start`` is the split-level index of its first row."""
        name = self.shards[index]
        for i, row in enumerate(self._rows(index)):
            yield self._example(row, start + i, name)

    def _example(self, row: dict, position: int, shard: str) -> Example:
        """The example of ``row``, at ``position`` in the split: keyed by its key column, or by position."""
        key = str(row[self.key_column]) if self.key_column else f"{self.split}-{position:08d}"
        return Example(key=key, label=row.get(self.label_column), payload=row, shard=shard)

    def selected_examples(self, index: int, start: int, keep: np.ndarray) -> Iterator[tuple[int, Example]]:
        """``(row, example)`` for the rows of shard ``index`` where ``keep`` (bool per row) is set:
        the same examples, in the same order, as filtering :meth:`shard_examples`, but parquet
        rows that are not kept are never converted to Python (pyarrow ``take`` per batch)."""
        if not self.worker_safe:
            yield from ((i, ex) for i, ex in enumerate(self.shard_examples(index, start)) if keep[i])
            return
        import pyarrow as pa

        name, offset = self.shards[index], 0
        with _parquet(self.files[index]) as pf:
            for batch in pf.iter_batches(batch_size=self.read_batch):
                rows = np.flatnonzero(keep[offset:offset + batch.num_rows])
                for i, row in zip(rows.tolist(), batch.take(pa.array(rows)).to_pylist() if len(rows) else ()):
                    yield offset + i, self._example(row, start + offset + i, name)
                offset += batch.num_rows

    def __iter__(self) -> Iterator[Example]:
        start = 0
        for index in range(len(self.shards)):
            for ex in self.shard_examples(index, start):
                yield ex
                start += 1

    def __repr__(self) -> str:
        return f"HFSource({self.location!r}, split={self.split!r})"


def _split_files(location: str, split: str) -> list[str]:
    """The files of one split: those matching a ``{split}`` pattern, or, for a folder URL, those
    ``datasets``' data-file rules find there (the rules ``load_dataset`` applies to a local
    directory); FileNotFoundError naming the location when there are none."""
    if remote.is_pipe(location):
        raise ValueError(f"hf:{location}: pipe: commands are read by wds: sources only (a pipe: shard is a tar)")
    if "{split}" in location:
        pattern = location.format(split=split)
        files = remote.glob(pattern) if remote.is_remote(pattern) else sorted(glob.glob(pattern))
        if not files:
            raise FileNotFoundError(f"hf:{location}: no files match {pattern!r} for split {split!r}")
        return files
    from datasets.data_files import DataFilesDict, get_data_patterns

    fs, _ = remote.url_fs(location)  # a missing fsspec backend is named before datasets tries
    fs.invalidate_cache()  # list the folder afresh: the files' fingerprints are read from the listing
    try:
        files = DataFilesDict.from_patterns(get_data_patterns(location), base_path=location)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"hf:{location}: no data files found there ({err})") from None
    if split not in files:
        raise ValueError(f"hf:{location}: split {split!r} not found; splits: {', '.join(files)}")
    return list(files[split])


def _parquet(path: str):
    """A pyarrow ParquetFile: a local path directly, a URL through its fsspec filesystem (read by
    range requests, a row group at a time; nothing is downloaded first)."""
    import pyarrow.parquet as pq

    if remote.is_remote(path):
        fs, inner = remote.url_fs(path)
        return pq.ParquetFile(inner, filesystem=fs)
    return pq.ParquetFile(path)


def _parquet_class_names(files: list[str], label_column: str) -> tuple[str, ...] | None:
    """The label's ClassLabel names as each parquet file of the split records them.

    ``datasets`` gives every split the features of one file, so names that differ between
    splits (or between files of a split) would otherwise go unnoticed. None when the files
    are not parquet or carry no ``datasets`` metadata.
    """
    import json

    found: dict[tuple[str, ...], str] = {}
    for f in files:
        if not f.endswith(".parquet"):
            return None
        with _parquet(f) as pf:
            meta = (pf.schema_arrow.metadata or {}).get(b"huggingface")
        if meta is None:
            return None
        label = json.loads(meta).get("info", {}).get("features", {}).get(label_column, {})
        found.setdefault(tuple(label.get("names", ())), f)
    if len(found) > 1:
        (a, fa), (b, fb) = list(found.items())[:2]
        raise ValueError(f"the label names of {os.path.basename(fa)} and {os.path.basename(fb)} differ "
                         f"({list(a)[:5]}… vs {list(b)[:5]}…)")
    return next(iter(found), None)


def check_dataset_dir(location: str) -> None:
    """Refuse a local dataset directory whose files would make ``datasets`` run code or fail
    with a traceback, in one line naming the file: a loading script ``DIR/DIR_NAME.py``
    (older ``datasets`` run it; proxyds never runs user or remote code), a ``README.md``
    card that is not UTF-8 or whose YAML header does not load with the safe loader
    (``!!python/object/apply:os.system`` and other Python tags included; nothing in it is
    ever constructed). Anything that is not a local directory passes unchecked."""
    path = os.path.expanduser(location)
    if not os.path.isdir(path):
        return
    script = os.path.join(path, os.path.basename(os.path.normpath(path)) + ".py")
    if os.path.exists(script):
        raise ValueError(f"hf:{location}: {script} is a dataset loading script; proxyds never runs code from a "
                         f"dataset: write the data as parquet (or arrow/csv/json) files without the script")
    card = os.path.join(path, "README.md")
    if os.path.isfile(card):
        _check_card(card, location)


def _check_card(card: str, location: str) -> None:
    import yaml

    try:
        with open(card, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError as err:
        raise ValueError(f"hf:{location}: dataset card {card} is not UTF-8 text ({err.reason} at byte {err.start})") from None
    header = re.match(r"\A\s*---[\r\n]+(.*?)[\r\n]+---(?:\r?\n|\Z)", text, re.DOTALL)
    if header is None:
        return
    try:
        meta = yaml.safe_load(header.group(1))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {text.count(chr(10), 0, header.start(1)) + mark.line + 1})" if mark is not None else ""
        problem = " ".join(str(getattr(err, "problem", None) or err).split())
        raise ValueError(f"hf:{location}: dataset card {card}: its YAML header cannot be read safely{where}: "
                         f"{problem}; fix or remove the card (proxyds only loads plain YAML)") from None
    if meta is not None and not isinstance(meta, dict):
        raise ValueError(f"hf:{location}: dataset card {card}: its YAML header must be a mapping "
                         f"(key: value lines), got {type(meta).__name__}")
