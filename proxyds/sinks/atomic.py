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
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_output_dir", "atomic_write", "check_output_dir", "sha256_file"]

_BLOCK = 1 << 20
_HOST = "".join(c if c.isalnum() else "_" for c in socket.gethostname())[:32] or "host"


def check_output_dir(out: str | Path, *, overwrite: bool, inputs: Iterable[str | Path] = (),
                     marker: str | None = "proxy.json") -> Path:
    """Refuse, before any work starts, an ``out`` that writing there could harm; returns it resolved.

    ``out`` must not be, contain or lie inside any of ``inputs`` (the input sources' directories
    and files, symlinks resolved): the atomic rename replaces all of ``out``. An existing ``out``
    is replaced only with ``overwrite`` and only when it holds ``marker`` (a previous output of
    the same kind, recognised by its ``proxy.json``), so unrelated data is never deleted. The
    nearest existing ancestor of ``out`` must let a directory be created in it (tried, not
    guessed from permission bits), so an unwritable location fails now, not after hours of work.
    """
    given = Path(out).expanduser().absolute()
    real = given.resolve()
    for source in inputs:
        src = Path(source).expanduser().resolve()
        if real == src or real in src.parents:
            raise ValueError(f"--out {given} would replace the input {src}; choose an output outside the input data")
        if src.is_dir() and src in real.parents:
            raise ValueError(f"--out {given} lies inside the input directory {src}; choose an output outside it")
    if given.exists() or given.is_symlink():
        if not overwrite:
            raise FileExistsError(errno.EEXIST, "output directory already exists; pass --overwrite to replace it",
                                  str(given))
        if given.is_symlink() or not given.is_dir() or (marker is not None and not (given / marker).is_file()):
            raise FileExistsError(errno.EEXIST, f"--overwrite only replaces a previous proxyds output (a directory "
                                  f"holding {marker}); this path is not one, so it is left alone", str(given))
    ancestor = given.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    _make_sibling(ancestor / given.name, "check").rmdir()
    return given


@contextmanager
def atomic_output_dir(out: str | Path, *, overwrite: bool = False, marker: str | None = None) -> Iterator[Path]:
    """Yield an empty temporary sibling of ``out``; rename it to ``out`` on success.

    The sibling is ``out.parent / f".{out.name}.tmp-{host}-{pid}-{random}"``, on the same file
    system, so the final rename is atomic. If ``out`` already exists the call fails at
    entry, before any work, unless ``overwrite`` is true (and, with ``marker``, the old directory
    holds that file: only a previous output is ever replaced); then the old directory is moved
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
        if marker is not None and not (out / marker).is_file():
            raise FileExistsError(errno.EEXIST, f"--overwrite only replaces a previous output (a directory holding "
                                  f"{marker}); this one is not, so it is left alone", str(out))
    _remove_stale_siblings(out)
    tmp = _make_sibling(out, "tmp")
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _move_into_place(tmp, out, overwrite=overwrite)
    _fsync_dir(parent)


def atomic_write(path: str | Path, write: Callable[[Path], None], *, durable: bool = False) -> None:
    """Write a file all at once: ``write(tmp)`` fills a hidden temporary sibling, which is then
    renamed over ``path``, so a reader (or a resumed build) never sees half a file. With
    ``durable`` the data is fsync'ed before the rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        if durable:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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
