"""``wds:`` source: WebDataset tar shards, read with ``webdataset``'s tar iterators.

The location is a brace pattern (``/data/imagenet-train-{000000..001281}.tar``), where the
literal text ``{split}`` is replaced by the split name, or a directory holding
``{split}-*.tar`` or ``{split}/*.tar``. It may be a URL fsspec reads
(``s3://bucket/train-{000000..000099}.tar``, ``gs://…``, ``hf://…``, ``https://…``, a folder URL
too) or WebDataset ``pipe:COMMAND`` shards (:mod:`proxyds.sources.remote`). Shards are read one
after another in the pattern's order, so example order and keys are stable. Fields stay raw
bytes (no decoder runs, so no pickle is ever loaded); the label field (default ``cls``) holds
an ASCII integer.
"""

from __future__ import annotations

import glob
import os
import posixpath
import tarfile
from collections.abc import Iterator

from proxyds.sources import remote
from proxyds.sources.base import Example, SplitInfo

__all__ = ["WdsSource", "expand_shards", "parse_label", "tar_damage"]


def expand_shards(location: str, split: str) -> list[str]:
    """The ordered shard paths (or URLs) of one split; FileNotFoundError naming what was tried."""
    import braceexpand

    if _is_dir(location):
        join = posixpath.join if remote.is_remote(location) else os.path.join
        tried = [join(location, f"{split}-*.tar"), join(location, split, "*.tar")]
        for pattern in tried:
            files = remote.glob(pattern) if remote.is_remote(location) else sorted(glob.glob(pattern))
            if files:
                return files
        raise FileNotFoundError(f"wds:{location}: no shards for split {split!r} (looked for {' and '.join(tried)})")
    files = list(braceexpand.braceexpand(location.replace("{split}", split)))
    missing = remote.missing(files) if remote.is_remote(location) else [f for f in files if not os.path.exists(f)]
    if missing:
        raise FileNotFoundError(f"wds:{location}: {len(missing)} of {len(files)} shards for split {split!r} "
                                f"do not exist, e.g. {missing[0]}")
    return files


def _is_dir(location: str) -> bool:
    if not remote.is_remote(location):
        return os.path.isdir(location)
    if remote.is_pipe(location) or "{" in location:
        return False
    fs, path = remote.url_fs(location)
    fs.invalidate_cache(path)
    return fs.isdir(path)


def tar_damage(location: str) -> str | None:
    """Walk a tar's headers: None if it ends with a proper end-of-archive marker, else what is
    wrong. Damage inside member data is left to decoders. A local file or URL is walked seeking
    over member data; a ``pipe:`` command's output is read once, end to end."""
    try:
        with remote.open_binary(location) as f:
            if remote.is_pipe(location):
                return _stream_damage(f)
            size = f.seek(0, os.SEEK_END)
            f.seek(0)
            try:
                with tarfile.open(fileobj=f, mode="r:") as tf:
                    members = tf.getmembers()
                    end = tf.offset
            except tarfile.TarError as err:
                return f"not a readable tar ({err})"
            f.seek(end)
            return _verdict(members, end, size, f.read(1 << 16))
    except OSError as err:  # a URL that vanished, a pipe: command that failed
        return f"cannot be read ({type(err).__name__}: {err})"


def _stream_damage(stream) -> str | None:
    tail = _Tail(stream)
    try:
        with tarfile.open(fileobj=tail, mode="r|") as tf:
            members = list(tf)
            end = tf.offset
    except tarfile.TarError as err:
        return f"not a readable tar ({err})"
    while tail.count < end + (1 << 16) and tail.read(1 << 16):
        pass
    return _verdict(members, end, tail.count, tail.since(end)[: 1 << 16])


def _verdict(members: list, end: int, size: int, after_end: bytes) -> str | None:
    """What is wrong with a tar whose headers end at ``end``, ``after_end`` the bytes there."""
    if members and members[-1].offset_data + members[-1].size > size:
        return f"truncated: its last member {members[-1].name!r} runs past the end of the file"
    if len(after_end) < 512 or after_end.strip(b"\0"):
        return (f"corrupt or truncated after {len(members)} members (byte {end} of {size} is not the end-of-archive "
                f"marker)")
    return None


class _Tail:
    """A read-only stream that counts what was read and keeps the last ``keep`` bytes of it."""

    def __init__(self, stream, keep: int = 1 << 18):
        self.stream, self.keep, self.count, self.buf = stream, keep, 0, bytearray()

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.count += len(data)
        self.buf += data
        if len(self.buf) > 2 * self.keep:
            del self.buf[:-self.keep]
        return data

    def since(self, pos: int) -> bytes:
        """The bytes read from stream position ``pos`` on (``pos`` within the kept tail)."""
        return bytes(self.buf[max(0, pos - (self.count - len(self.buf))):])


class WdsSource:
    """One split of a WebDataset, streamed shard by shard."""

    def __init__(self, location: str, split: str, *, label_column: str = "cls", key_column: str | None = None):
        if key_column is not None:
            raise ValueError(f"wds:{location}: --key-column is not used for WebDataset input (keys are the tar keys)")
        self.location, self.split, self.label_column = location, split, label_column
        self.files = expand_shards(location, split)
        self.info = SplitInfo(format="wds", label_column=label_column, class_names=())

    @property
    def shards(self) -> list[str]:
        """File names (a ``pipe:`` shard is named by its whole command)."""
        return [f if remote.is_pipe(f) else posixpath.basename(f) for f in self.files]

    keys_from_position = False  # keys are the tar keys

    def damage(self, index: int) -> str | None:
        """Why shard ``index`` is damaged (truncated, corrupt header), or None if it reads whole.

        ``tarfile``, and so ``webdataset``, stops silently at a bad header after the first
        member: without this check a truncated shard would just look shorter.
        """
        return tar_damage(self.files[index])

    def shard_examples(self, index: int, start: int = 0) -> Iterator[Example]:
        """The samples of shard ``index``, streamed: webdataset's own tar iterators (what
        ``wds.WebDataset`` runs per shard) over the stream :func:`remote.open_binary` opens."""
        from webdataset.tariterators import group_by_keys, tar_file_expander

        url, name = self.files[index], self.shards[index]
        with remote.open_binary(url) as stream:
            for sample in group_by_keys(tar_file_expander([{"url": url, "stream": stream}])):
                fields = {k: v for k, v in sample.items() if not k.startswith("__")}
                yield Example(key=sample["__key__"], label=parse_label(fields.get(self.label_column)),
                              payload=fields, shard=name)

    def __iter__(self) -> Iterator[Example]:
        for index in range(len(self.files)):
            yield from self.shard_examples(index)

    def __repr__(self) -> str:
        return f"WdsSource({self.location!r}, split={self.split!r})"


def parse_label(raw: bytes | None) -> int | None | str:
    """An int, None when the field is missing, or the raw text when it is not an integer."""
    if raw is None:
        return None
    text = raw.decode("utf-8", errors="replace").strip()
    try:
        return int(text)
    except ValueError:
        return text
