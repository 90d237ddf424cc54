"""All-or-nothing output directories, and file digests for the manifest.

A build writes everything into a hidden sibling of ``OUT`` and renames it into place only
when every writer has closed, so a reader never sees a half-written proxy: either ``OUT``
is the previous complete output (or absent), or it is the new complete one.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_output_dir", "sha256_file"]

_BLOCK = 1 << 20
_HOST = "".join(c if c.isalnum() else "_" for c in socket.gethostname())[:32] or "host"


@contextmanager
def atomic_output_dir(out: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty temporary sibling of ``out``; rename it to ``out`` on success.

    The sibling is ``out.parent / f".{out.name}.tmp-{host}-{pid}-{random}"``, on the same file
    system, so the final rename is atomic. If ``out`` already exists the call fails at
    entry, before any work, unless ``overwrite`` is true; then the old directory is moved
    aside, the new one renamed in, and only then the old one deleted. If the body raises,
    the temporary directory is removed and the exception propagates; ``out`` is untouched.
    Temporary siblings of this host whose process no longer runs (a killed build) are removed.
    """
    out = Path(out).absolute()
    parent = out.parent
    if out.exists() or out.is_symlink():
        if not overwrite:
            raise FileExistsError(
                errno.EEXIST, "output directory already exists; pass --overwrite to replace it", str(out)
            )
        if not out.is_dir() or out.is_symlink():
            raise FileExistsError(
                errno.EEXIST, "output path exists and is not a directory; refusing to replace it", str(out)
            )
    _remove_stale_siblings(out)
    tmp = _make_sibling(out, "tmp")
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _move_into_place(tmp, out, overwrite=overwrite)
    _fsync_dir(parent)


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks so shards of any size fit in memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _make_sibling(out: Path, tag: str) -> Path:
    """Create and return a fresh hidden directory next to ``out`` (plain mkdir, so umask applies)."""
    parent = out.parent
    try:
        if not parent.is_dir():
            parent.mkdir(parents=True)
    except OSError as e:
        raise type(e)(e.errno, f"cannot create the parent of the output directory: {e.strerror}", str(parent)) from e
    for _ in range(100):
        candidate = parent / f".{out.name}.{tag}-{_HOST}-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        except OSError as e:
            raise type(e)(
                e.errno, f"cannot write the output directory's temporary sibling into {parent}: {e.strerror}",
                str(parent),
            ) from e
        return candidate
    raise FileExistsError(errno.EEXIST, "could not find a free temporary name", str(parent))


def _remove_stale_siblings(out: Path) -> None:
    """Delete temporary siblings left by a killed build of this host (their process is gone)."""
    prefix = f".{out.name}.tmp-{_HOST}-"
    if not out.parent.is_dir():
        return
    for sibling in out.parent.iterdir():
        if not sibling.name.startswith(prefix):
            continue
        pid = sibling.name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(sibling, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _move_into_place(tmp: Path, out: Path, *, overwrite: bool) -> None:
    """Rename ``tmp`` to ``out``, moving an old ``out`` aside first when ``overwrite``."""
    if not (out.exists() or out.is_symlink()):
        os.rename(tmp, out)
        return
    if not overwrite:
        # Someone created OUT while we were writing: keep the finished work where it is.
        raise FileExistsError(
            errno.EEXIST,
            f"output directory appeared while writing; the finished output is kept in {tmp}; "
            "pass --overwrite to replace it",
            str(out),
        )
    old = _make_sibling(out, "old")
    old.rmdir()
    os.rename(out, old)
    try:
        os.rename(tmp, out)
    except BaseException:
        os.rename(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    """Best-effort: make the rename durable (not supported on every platform/file system)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
