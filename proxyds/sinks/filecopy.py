"""Copy byte ranges of input files into an output file without passing them through Python.

``os.copy_file_range`` lets the kernel move the bytes (page cache to page cache, or a
reflink on file systems that share extents); where it is missing or refuses (another file
system on older kernels, special files) the bytes go through one reused buffer.
"""

from __future__ import annotations

import errno
import os
from typing import NamedTuple

from proxyds.errors import BadInput

__all__ = ["FileRange", "RangeCopier"]

_BUFFER = 1 << 20
# copy_file_range's "not here" answers: fall back to the buffer for the rest of the copier's life.
_UNSUPPORTED = {errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP}


class FileRange(NamedTuple):
    """``size`` bytes of the file ``path`` from byte ``offset``: a field a writer copies from the
    input as it is, never holding it in memory. A plain tuple (a tar walk makes one per member);
    :meth:`check` it where it comes in from outside."""

    path: str
    offset: int
    size: int

    def check(self) -> None:
        for name in ("offset", "size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"FileRange {name} must be an int >= 0, got {value!r}")


class RangeCopier:
    """Copies :class:`FileRange`s into an open file descriptor at its current position, keeping
    the last input file open (ranges of one shard come one after another). ``close`` it."""

    def __init__(self, use_copy_file_range: bool = True) -> None:
        self.kernel = use_copy_file_range and hasattr(os, "copy_file_range")
        self._path: str | None = None
        self._fd: int | None = None
        self._buf: memoryview | None = None

    def copy(self, src: FileRange, dst_fd: int) -> None:
        fd = self._open(src.path)
        offset, left = src.offset, src.size
        while left:
            n = self._kernel_copy(fd, dst_fd, offset, left) if self.kernel else None
            if n is None:
                n = self._buffer_copy(fd, dst_fd, offset, left)
            if n == 0:
                raise BadInput(f"{src.path} ends before byte {offset + left:,}: the input changed after it was "
                               f"scanned; rerun the build")
            offset += n
            left -= n

    def read(self, src: FileRange) -> bytes:
        """The bytes of ``src`` (for small ranges, gathered with other small writes)."""
        data = os.pread(self._open(src.path), src.size, src.offset)
        if len(data) != src.size:
            raise BadInput(f"{src.path} ends before byte {src.offset + src.size:,}: the input changed after it "
                           f"was scanned; rerun the build")
        return data

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self._fd = self._path = None

    def _open(self, path: str) -> int:
        if path != self._path:
            self.close()
            self._fd = os.open(path, os.O_RDONLY)
            self._path = path
        return self._fd

    def _kernel_copy(self, fd: int, dst_fd: int, offset: int, left: int) -> int | None:
        try:
            return os.copy_file_range(fd, dst_fd, left, offset)
        except OSError as err:
            if err.errno not in _UNSUPPORTED:
                raise
            self.kernel = False
            return None

    def _buffer_copy(self, fd: int, dst_fd: int, offset: int, left: int) -> int:
        if self._buf is None:
            self._buf = memoryview(bytearray(_BUFFER))
        n = os.preadv(fd, [self._buf[:min(left, _BUFFER)]], offset)
        done = 0
        while done < n:
            done += os.write(dst_fd, self._buf[done:n])
        return n
