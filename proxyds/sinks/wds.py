"""WebDataset tar shards with reproducible bytes and member names that cannot escape.

``webdataset.TarWriter`` stamps every member with the current time and user "bigdata"
unless told otherwise, and silently drops fields whose name starts with "_"; this writer
keeps every field and makes the archive a pure function of its contents (mtime 0, uid/gid 0,
empty user/group names, mode 0o444). Its bytes are exactly what ``tarfile`` in PAX format
writes for those members (headers from ``TarInfo.tobuf``, NUL padding, two zero blocks, the
last record filled), but a field's data may also be a :class:`FileRange` of an input file,
copied by the kernel (``os.copy_file_range``) without passing through Python.
"""

from __future__ import annotations

import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from proxyds.sinks.filecopy import FileRange, RangeCopier
from proxyds.sinks.parquet import check_split_name, prepare_split_dir
from proxyds.sinks.shards import even_shards, plan_shards

__all__ = ["WdsShardWriter", "FileRange", "even_shards"]

_BLOCK, _RECORD = tarfile.BLOCKSIZE, tarfile.RECORDSIZE
_FLUSH = 1 << 20  # headers and small fields are gathered up to this many bytes per write
_SMALL = 1 << 16  # file ranges under this size are read and gathered; larger ones are copied by the kernel


def _check_key(key: str) -> None:
    # WebDataset splits a member name at the first "." after the last "/": a key with a dot
    # or slash would be read back as a different key, and "/" or ".." could escape the
    # directory a tar is extracted into.
    if not isinstance(key, str) or not key or "." in key or "/" in key or "\x00" in key:
        raise ValueError(
            f"example key {key!r} is invalid: it must be a non-empty string without '.', '/', '..' or NUL"
        )


def _check_field(key: str, field: str) -> None:
    if (
        not isinstance(field, str)
        or not field
        or "/" in field
        or "\x00" in field
        or field.startswith(".")
        or field.endswith(".")
    ):
        raise ValueError(
            f"field name {field!r} of key {key!r} is invalid: it must be non-empty, contain no '/' or NUL "
            "and not start or end with '.' (e.g. 'jpg', 'cls', 'x.npy')"
        )


class WdsShardWriter:
    """Write examples of one split as ``{split}-{i:06d}.tar`` shards of ``maxcount`` examples.

    Use as a context manager. Each example becomes members ``f"{key}.{field}"`` in sorted
    field order, holding the field's bytes unchanged: ``bytes`` or a :class:`FileRange` of a
    file (copied straight from it). ``counts`` gives the examples per
    shard. ``plan`` (examples per shard) replaces ``maxcount`` when the total is known in
    advance, e.g. from :func:`even_shards`; ``shards`` then names the plan's shards this writer
    writes (one process's share, when several write a split's shards in parallel): it is given
    exactly their examples, in order, and writes them under their numbers in the whole plan.
    Zero examples still give one valid empty tar. On an
    exception every shard this writer produced is removed, so a failed split never looks complete.
    """

    def __init__(self, out_dir: Path, split: str, *, maxcount: int = 10_000,
                 plan: Sequence[int] | None = None, shards: Sequence[int] | None = None) -> None:
        check_split_name(split)
        if isinstance(maxcount, bool) or not isinstance(maxcount, int) or maxcount < 1:
            raise ValueError(f"maxcount must be a positive int, got {maxcount!r}")
        if plan is not None and (not plan or any(int(c) < 0 for c in plan)):
            raise ValueError(f"plan must be a non-empty list of per-shard counts >= 0, got {plan!r}")
        self.plan = None if plan is None else [int(c) for c in plan]
        self._ids = plan_shards(self.plan, shards)
        self._shares = shards  # None: this writer writes the whole split
        self.out_dir = Path(out_dir)
        self.split = split
        self.maxcount = maxcount
        self.paths: list[Path] = []
        self.counts: list[int] = []
        self.num_rows = 0
        self._file = None  # the open shard (unbuffered)
        self._offset = 0  # bytes in the open shard, pending ones included
        self._pending = bytearray()
        self._copier = RangeCopier()
        self._last_key: str | None = None
        self._open = False

    def __enter__(self) -> WdsShardWriter:
        names = None if self._shares is None else [f"{self.split}-{i:06d}.tar" for i in self._ids]
        prepare_split_dir(self.out_dir, self.split, "tar", names)
        self._open = True
        return self

    def write(self, key: str, fields: Mapping[str, bytes]) -> None:
        """Append one example; all checks run before anything is written."""
        if not self._open:
            raise RuntimeError("WdsShardWriter.write called outside its `with` block")
        _check_key(key)
        if not fields:
            raise ValueError(f"example {key!r} has no fields; a tar cannot hold an empty example")
        if key == self._last_key:
            # Adjacent members with one key are merged into one example by every reader.
            raise ValueError(f"example key {key!r} written twice in a row; keys must be unique in a split")
        for field, value in fields.items():
            _check_field(key, field)
            if isinstance(value, FileRange):
                value.check()
            elif not isinstance(value, (bytes, bytearray, memoryview)):
                raise TypeError(f"field {field!r} of key {key!r} must be bytes or a FileRange, "
                                f"got {type(value).__name__}")
        while self._file is None or self.counts[-1] >= self._capacity(len(self.counts) - 1):
            if self._ids is not None and len(self.paths) >= len(self._ids):
                raise ValueError(f"more examples than the shard plan's {sum(self.plan[i] for i in self._ids)}")
            self._start_shard()
        for field in sorted(fields):
            self._add(f"{key}.{field}", fields[field])
        self.counts[-1] += 1
        self.num_rows += 1
        self._last_key = key

    def __exit__(self, exc_type, exc, tb) -> None:
        self._open = False
        if exc_type is not None:
            self._abort()
            return
        try:
            if self._file is None and self._ids != []:
                self._start_shard()  # zero examples: one empty, valid tar
            while self._ids is not None and len(self.paths) < len(self._ids):
                self._start_shard()  # planned shards left empty
            if self._ids is not None and self.counts != [self.plan[i] for i in self._ids]:
                raise ValueError(f"shard counts {self.counts} do not match the plan {self.plan} (shards {self._ids})")
            self._close_shard()
        except BaseException:
            self._abort()
            raise
        finally:
            self._copier.close()

    def _add(self, name: str, value) -> None:
        """One member: its header, its data (bytes, or a file range the kernel copies), NUL padding."""
        if not isinstance(value, FileRange):
            value = bytes(value)
        size = value.size if isinstance(value, FileRange) else len(value)
        self._put(_header(name, size))
        if isinstance(value, FileRange) and size < _SMALL:  # one read into the pending bytes, no syscall of its own
            self._put(self._copier.read(value))
        elif isinstance(value, FileRange):
            self._flush()
            self._copier.copy(value, self._file.fileno())
            self._offset += size
        else:
            self._put(value)
        self._put(bytes(-size % _BLOCK))

    def _put(self, data) -> None:
        self._pending += data
        self._offset += len(data)
        if len(self._pending) >= _FLUSH:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._file.write(self._pending)  # FileIO.write on a regular file writes it all
            self._pending.clear()

    def _capacity(self, k: int) -> int:
        """Examples the writer's ``k``-th shard holds."""
        return self.maxcount if self._ids is None else self.plan[self._ids[k]] if k < len(self._ids) else 0

    def _start_shard(self) -> None:
        self._close_shard()
        k = len(self.paths)
        path = self.out_dir / f"{self.split}-{k if self._ids is None else self._ids[k]:06d}.tar"
        self.paths.append(path)
        self.counts.append(0)
        self._file = open(path, "wb", buffering=0)
        self._offset = 0

    def _close_shard(self) -> None:
        """End of archive as ``TarFile.close`` writes it: two zero blocks, then zeros to a full record."""
        if self._file is None:
            return
        try:
            self._put(bytes(2 * _BLOCK))
            self._put(bytes(-self._offset % _RECORD))
            self._flush()
        finally:
            self._file.close()
            self._file = None
            self._pending.clear()

    def _abort(self) -> None:
        try:
            self._close_shard()
        except Exception:
            self._file = None
        self._copier.close()
        for p in self.paths:
            p.unlink(missing_ok=True)
        self.paths, self.counts = [], []


def _member(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.mode = 0o444
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info


def _header(name: str, size: int) -> bytes:
    """The header ``TarFile.addfile`` writes for ``_member(name, size)`` in PAX format. A name of at
    most 100 ASCII characters and a size under 8 GiB need no PAX record, so the header is a USTAR
    block: the fixed fields' template with the name, size and checksum filled in (``tobuf``'s
    bytes, ten times faster); anything else goes through ``tobuf`` itself."""
    if len(name) > 100 or not name.isascii() or not 0 <= size < 8 ** 11:
        return _member(name, size).tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    buf = bytearray(_TEMPLATE)
    buf[:len(name)] = name.encode("ascii")
    buf[124:136] = b"%011o\0" % size
    buf[148:155] = b"%06o\0" % (256 + sum(buf) - sum(buf[148:156]))  # tarfile's unsigned checksum
    return bytes(buf)


_TEMPLATE = _member("", 0).tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
