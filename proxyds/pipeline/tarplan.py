"""The examples of a plain WebDataset tar, found by seeking from header to header.

The copy pass needs each example's key and where its members' bytes lie, not the bytes:
:func:`tar_plan` reads one 512-byte header per member (``os.pread``, data seeked over) and
groups members into examples by webdataset's own rules (``base_plus_ext``, lower-cased
extensions, metadata members skipped), so it finds exactly the examples ``WdsSource`` streams.
Anything it is not sure to read the same way (PAX or GNU extension headers, links, sparse
members, a compression magic, a duplicate field, a bad or missing end-of-archive marker)
gives None, and the caller reads that shard the streamed way instead.
"""

from __future__ import annotations

import os
import re
import tarfile

from proxyds.sinks.filecopy import FileRange

__all__ = ["tar_members", "tar_plan"]

_BLOCK = tarfile.BLOCKSIZE
_EOF = bytes(_BLOCK)
_DATA_TYPES = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)
# What tarfile's stream mode ("r|*", as webdataset opens a shard) takes for a compressed file.
_COMPRESSED = (b"\x1f\x8b\x08", b"\x5d\x00\x00\x80", b"\xfd7zXZ")
# The header's number fields (mode, uid, gid, size, mtime, checksum, device numbers), and the form
# of them that tarfile's nti() surely reads as octal: blanks, octal digits, blanks, then a NUL and anything.
_NUMBERS = ((100, 108), (108, 116), (116, 124), (124, 136), (136, 148), (148, 156), (329, 337), (337, 345))
_OCTAL = re.compile(rb"[ \t\n\r\f\v]*[0-7]*[ \t\n\r\f\v]*(?:\x00.*)?", re.DOTALL)
# webdataset.tariterators: tar_file_iterator's default skip_meta, and base_plus_ext's pattern
# (key, extensions); test_copy_direct checks tar_plan against webdataset itself.
_SKIP_META = re.compile(r"__[^/]*__($|/)")
_BASE_PLUS_EXT = re.compile(r"^((?:.*/|)[^.]+)[.]([^/]*)$")


def tar_members(path: str) -> list[tuple[str, int, int]] | None:
    """``(name, data offset, size)`` of each regular member, in order, reading only headers; None
    when the tar is anything but plain ustar/v7 members (directories skipped) ended by a zero block,
    or cannot be opened (the streamed read then reports it as it always has)."""
    members: list[tuple[str, int, int]] = []
    read = _Headers()
    try:
        end = os.path.getsize(path)
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        if hasattr(os, "posix_fadvise"):  # headers only: no read-ahead into data that may be skipped
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
        offset = 0
        while True:
            buf = os.pread(fd, _BLOCK, offset)
            if len(buf) < _BLOCK:
                return None  # no end-of-archive marker
            if buf == _EOF:
                return members
            if offset == 0 and (buf.startswith(_COMPRESSED) or (buf[:3] == b"BZh" and buf[4:10] == b"1AY&SY")):
                return None
            header = read(buf)
            if header is None:
                return None
            name, kind, size = header
            offset += _BLOCK
            if kind == tarfile.DIRTYPE:
                continue
            if kind not in _DATA_TYPES or size < 0 or offset + size > end:
                return None
            members.append((name, offset, size))
            offset += -(-size // _BLOCK) * _BLOCK
    finally:
        os.close(fd)


class _Headers:
    """``(name, type, size)`` of a header block as ``TarInfo.frombuf`` reads it, or None where
    ``frombuf`` raises. A tar writer gives its members the same mode, owner, times, type and
    magic, so a header whose bytes other than name, size and checksum equal the last plain one's
    needs only those three read (six times faster than ``frombuf``, which parses every field)."""

    def __init__(self) -> None:
        self._rest, self._rest_sum, self._kind, self._prefix = None, 0, b"", ""

    def __call__(self, buf: bytes) -> tuple[str, bytes, int] | None:
        rest = buf[100:124] + buf[136:148] + buf[156:]
        if rest != self._rest:
            header = _plain_header(buf)
            if header is None:
                return _tarfile_header(buf)
            self._rest, self._rest_sum = rest, 256 + sum(rest)
            self._kind, self._prefix = buf[156:157], _text(buf[345:500])
            return header
        if _OCTAL.fullmatch(buf, 124, 136) is None or _OCTAL.fullmatch(buf, 148, 156) is None or \
                _octal(buf[148:156]) != self._rest_sum + sum(buf[:100]) + sum(buf[124:136]):
            return _tarfile_header(buf)
        return _named(_text(buf[:100]), self._kind, self._prefix, _octal(buf[124:136]))


def _plain_header(buf: bytes) -> tuple[str, bytes, int] | None:
    """``(name, type, size)`` of a header as ``TarInfo.frombuf`` reads it, when every number field is
    plain octal text (what every tar writer writes) and the checksum is the unsigned one; else None,
    and ``frombuf`` itself decides."""
    for lo, hi in _NUMBERS:
        if _OCTAL.fullmatch(buf, lo, hi) is None:
            return None
    if _octal(buf[148:156]) != 256 + sum(buf) - sum(buf[148:156]):
        return None
    kind = buf[156:157]
    if kind in tarfile.GNU_TYPES:  # long names and sparse maps: frombuf reads more of the block
        return None
    return _named(_text(buf[:100]), kind, _text(buf[345:500]), _octal(buf[124:136]))


def _named(name: str, kind: bytes, prefix: str, size: int) -> tuple[str, bytes, int]:
    """The end of ``frombuf``: a v7 directory, slashes, the ustar prefix."""
    if kind == tarfile.AREGTYPE and name.endswith("/"):
        kind = tarfile.DIRTYPE
    if kind == tarfile.DIRTYPE:
        name = name.rstrip("/")
    if prefix:
        name = prefix + "/" + name
    return name, kind, size


def _tarfile_header(buf: bytes) -> tuple[str, bytes, int] | None:
    try:
        info = tarfile.TarInfo.frombuf(buf, tarfile.ENCODING, "surrogateescape")
    except tarfile.HeaderError:
        return None
    return info.name, info.type, info.size


def _octal(field: bytes) -> int:
    return int(field.split(b"\0", 1)[0].strip() or b"0", 8)


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode(tarfile.ENCODING, "surrogateescape")


def tar_plan(path: str) -> list[tuple[str, dict[str, FileRange]]] | None:
    """``(key, {field: FileRange})`` per example of the tar at ``path``, as ``WdsSource`` reads
    them (fields named by their lower-cased extension), or None (see the module's note)."""
    members = tar_members(path)
    if members is None:
        return None
    examples: list[tuple[str, dict[str, FileRange]]] = []
    key, fields = None, None
    for name, offset, size in members:
        if name.startswith("__") and (("/" not in name and name.endswith("__")) or _SKIP_META.match(name)):
            continue  # tar_file_iterator's metadata members (its meta_prefix/meta_suffix and skip_meta)
        split = _BASE_PLUS_EXT.match(name)
        if split is None:
            continue
        prefix, suffix = split.group(1), split.group(2).lower()
        if fields is None or prefix != key:
            key, fields = prefix, {}
            examples.append((key, fields))
        if suffix in fields or suffix.startswith("__"):
            return None  # webdataset raises on a duplicate, and "__" names its own entries
        fields[suffix] = FileRange(path, offset, size)
    return examples
