"""Remote inputs: fsspec URLs (``s3://``, ``gs://``, ``hf://``, ``http(s)://``, …) and
WebDataset's ``pipe:COMMAND`` shards.

A URL is opened with ``fsspec`` (``fsspec.core.url_to_fs``), whose filesystems read by range
requests into a bounded read-ahead buffer: nothing is downloaded to disk first. Credentials
and endpoints come from fsspec's and the storage's own configuration (``AWS_*`` variables,
``FSSPEC_S3_ENDPOINT_URL`` and other ``FSSPEC_<PROTOCOL>_<OPTION>`` variables, ``~/.aws``,
``gcloud`` logins, ``HF_TOKEN``). A ``pipe:`` shard is run with ``webdataset.gopen``, as
WebDataset runs it.
"""

from __future__ import annotations

import os
import posixpath

__all__ = ["is_remote", "is_pipe", "url_fs", "open_binary", "glob", "missing", "file_stats"]


def is_pipe(location: str) -> bool:
    return location.startswith("pipe:")


def is_remote(location: str) -> bool:
    """A URL (``scheme://…``) or a ``pipe:`` command, as opposed to a local path."""
    return is_pipe(location) or "://" in location.split("{", 1)[0]


def url_fs(url: str):
    """``(filesystem, path)`` for a URL; a missing fsspec backend (s3fs, gcsfs) or an unknown
    protocol is a ValueError naming the URL."""
    import fsspec.core

    try:
        return fsspec.core.url_to_fs(url)
    except ImportError as err:
        raise ValueError(f"{url}: its filesystem's package is not installed ({err})") from None
    except ValueError as err:
        raise ValueError(f"{url}: fsspec cannot open it ({err})") from None


def open_binary(location: str):
    """A readable binary stream: a local file, a ``pipe:`` command's output, or a URL's
    fsspec file (seekable, read by range requests)."""
    if is_pipe(location):
        from webdataset.gopen import gopen

        return gopen(location, "rb")
    if not is_remote(location):
        return open(location, "rb")
    fs, path = url_fs(location)
    return fs.open(path, "rb")


def glob(pattern: str) -> list[str]:
    """The URLs matching a glob pattern, sorted."""
    fs, path = url_fs(pattern)
    fs.invalidate_cache()
    return [fs.unstrip_protocol(p) for p in sorted(fs.glob(path))]


def missing(urls: list[str]) -> list[str]:
    """The URLs in ``urls`` that do not exist (never asked of ``pipe:`` commands). Each folder is
    listed once, afresh, so a long shard list costs one listing, not a request per shard."""
    absent, listed = [], set()
    for url in urls:
        if is_pipe(url):
            continue
        fs, path = url_fs(url)
        parent = posixpath.dirname(path)
        if (id(fs), parent) not in listed:
            listed.add((id(fs), parent))
            fs.invalidate_cache(parent)
            try:
                fs.ls(parent, detail=False)  # fills the listing cache that exists() and info() read
            except (OSError, NotImplementedError, ValueError):
                pass  # not listable (plain http): exists() asks per file
        if not fs.exists(path):
            absent.append(url)
    return absent


def file_stats(files: list[str]) -> list[tuple] | None:
    """What identifies each file's current content: ``(path, size, mtime_ns)`` for a local file,
    ``(url, size, checksum)`` for a URL (fsspec's ``checksum``: the ETag on S3, a hash of the
    file's info elsewhere); None when a ``pipe:`` command is among them (nothing to ask)."""
    stats = []
    for f in files:
        if is_pipe(f):
            return None
        if is_remote(f):
            fs, path = url_fs(f)
            stats.append((f, fs.size(path), str(fs.checksum(path))))
        else:
            st = os.stat(f)
            stats.append((f, st.st_size, st.st_mtime_ns))
    return stats
