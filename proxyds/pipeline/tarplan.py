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
# webdataset.tariterators.tar_file_iterator's default skip_meta.
_SKIP_META = re.compile(r"__[^/]*__($|/)")


def tar_members(path: str) -> list[tuple[str, int, int]] | None:
    """``(name, data offset, size)`` of each regular member, in order, reading only headers; None
    when the tar is anything but plain ustar/v7 members (directories skipped) ended by a zero block."""
    end = os.path.getsize(path)
    members: list[tuple[str, int, int]] = []
    fd = os.open(path, os.O_RDONLY)
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
            try:
                info = tarfile.TarInfo.frombuf(buf, tarfile.ENCODING, "surrogateescape")
            except tarfile.HeaderError:
                return None
            offset += _BLOCK
            if info.type == tarfile.DIRTYPE:
                continue
            if info.type not in _DATA_TYPES or info.size < 0 or offset + info.size > end:
                return None
            members.append((info.name, offset, info.size))
            offset += -(-info.size // _BLOCK) * _BLOCK
    finally:
        os.close(fd)


def tar_plan(path: str) -> list[tuple[str, dict[str, FileRange]]] | None:
    """``(key, {field: FileRange})`` per example of the tar at ``path``, as ``WdsSource`` reads
    them (fields named by their lower-cased extension), or None (see the module's note)."""
    from webdataset.tariterators import base_plus_ext, meta_prefix, meta_suffix

    members = tar_members(path)
    if members is None:
        return None
    examples: list[tuple[str, dict[str, FileRange]]] = []
    key, fields = None, None
    for name, offset, size in members:
        if "/" not in name and name.startswith(meta_prefix) and name.endswith(meta_suffix):
            continue
        if _SKIP_META.match(name):
            continue
        prefix, suffix = base_plus_ext(name)
        if prefix is None:
            continue
        suffix = suffix.lower()
        if fields is None or prefix != key:
            key, fields = prefix, {}
            examples.append((key, fields))
        if suffix in fields or suffix.startswith("__"):
            return None  # webdataset raises on a duplicate, and "__" names its own entries
        fields[suffix] = FileRange(path, offset, size)
    return examples
