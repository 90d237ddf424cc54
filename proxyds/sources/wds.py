"""``wds:`` source: WebDataset tar shards, read with ``webdataset``.

The location is a brace pattern (``/data/imagenet-train-{000000..001281}.tar``), where the
literal text ``{split}`` is replaced by the split name, or a directory holding
``{split}-*.tar`` or ``{split}/*.tar``. Shards are read one after another in the pattern's
order, so example order and keys are stable. Fields stay raw bytes (no decoder runs, so no
pickle is ever loaded); the label field (default ``cls``) holds an ASCII integer.
"""

from __future__ import annotations

import glob
import os
import tarfile
from collections.abc import Iterator

from proxyds.sources.base import Example, SplitInfo

__all__ = ["WdsSource", "expand_shards", "tar_damage"]


def expand_shards(location: str, split: str) -> list[str]:
    """The ordered shard paths of one split; FileNotFoundError naming what was tried."""
    import braceexpand

    if os.path.isdir(location):
        tried = [os.path.join(location, f"{split}-*.tar"), os.path.join(location, split, "*.tar")]
        for pattern in tried:
            files = sorted(glob.glob(pattern))
            if files:
                return files
        raise FileNotFoundError(f"wds:{location}: no shards for split {split!r} (looked for {' and '.join(tried)})")
    files = list(braceexpand.braceexpand(location.replace("{split}", split)))
    missing = [f for f in files if not os.path.exists(f)]
    if missing:
        raise FileNotFoundError(f"wds:{location}: {len(missing)} of {len(files)} shards for split {split!r} "
                                f"do not exist, e.g. {missing[0]}")
    return files


def tar_damage(path: str) -> str | None:
    """Walk a tar's headers (seeking over member data): None if it ends with a proper
    end-of-archive marker, else what is wrong. Damage inside member data is left to decoders."""
    size = os.path.getsize(path)
    try:
        with tarfile.open(path, "r:") as tf:
            members = tf.getmembers()
            end = tf.offset
    except tarfile.TarError as err:
        return f"not a readable tar ({err})"
    if members and members[-1].offset_data + members[-1].size > size:
        return f"truncated: its last member {members[-1].name!r} runs past the end of the file"
    with open(path, "rb") as f:
        f.seek(end)
        tail = f.read(1 << 16)
    if len(tail) < 512 or tail.strip(b"\0"):
        return (f"corrupt or truncated after {len(members)} members (byte {end} of {size} is not the end-of-archive "
                f"marker)")
    return None


def _identity(urls):
    return urls


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
        return [os.path.basename(f) for f in self.files]

    keys_from_position = False  # keys are the tar keys

    def damage(self, index: int) -> str | None:
        """Why shard ``index`` is damaged (truncated, corrupt header), or None if it reads whole.

        ``tarfile``, and so ``webdataset``, stops silently at a bad header after the first
        member: without this check a truncated shard would just look shorter.
        """
        return tar_damage(self.files[index])

    def shard_examples(self, index: int, start: int = 0) -> Iterator[Example]:
        import webdataset as wds

        url, name = self.files[index], self.shards[index]
        ds = wds.WebDataset(url, shardshuffle=False, nodesplitter=_identity, workersplitter=_identity,
                            empty_check=False)
        for sample in ds:
            fields = {k: v for k, v in sample.items() if not k.startswith("__")}
            yield Example(key=sample["__key__"], label=_parse_label(fields.get(self.label_column)),
                          payload=fields, shard=name)

    def __iter__(self) -> Iterator[Example]:
        for index in range(len(self.files)):
            yield from self.shard_examples(index)

    def __repr__(self) -> str:
        return f"WdsSource({self.location!r}, split={self.split!r})"


def _parse_label(raw: bytes | None) -> int | None | str:
    """An int, None when the field is missing, or the raw text when it is not an integer."""
    if raw is None:
        return None
    text = raw.decode("utf-8", errors="replace").strip()
    try:
        return int(text)
    except ValueError:
        return text
