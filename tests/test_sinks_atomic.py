"""Atomic output directories (all or nothing, never over an existing output) and streamed file digests."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest

from proxyds.sinks import atomic_output_dir, sha256_file


def test_atomic_output_dir_success_failure_exists_overwrite(tmp_path):
    out = tmp_path / "out"
    with atomic_output_dir(out) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".out.tmp-") and not out.exists()
        (tmp / "a.txt").write_text("new")
    assert (out / "a.txt").read_text() == "new"
    assert os.listdir(tmp_path) == ["out"]

    ran = []
    with pytest.raises(FileExistsError, match="--overwrite") as err:
        with atomic_output_dir(out):
            ran.append(True)
    assert not ran and str(out) in str(err.value)

    with pytest.raises(KeyError):
        with atomic_output_dir(out, overwrite=True) as tmp:
            (tmp / "b.txt").write_text("half")
            raise KeyError("boom")
    assert os.listdir(tmp_path) == ["out"] and os.listdir(out) == ["a.txt"]  # old output untouched

    with atomic_output_dir(out, overwrite=True) as tmp:
        (tmp / "b.txt").write_text("replaced")
    assert os.listdir(out) == ["b.txt"] and os.listdir(tmp_path) == ["out"]

    with pytest.raises(ValueError):
        with atomic_output_dir(tmp_path / "never"):
            raise ValueError("x")
    assert os.listdir(tmp_path) == ["out"]


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores directory permissions")
def test_atomic_output_dir_unwritable_parent_names_it(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    try:
        with pytest.raises(PermissionError, match=str(locked)):
            with atomic_output_dir(locked / "out"):
                pass
    finally:
        locked.chmod(0o755)


def test_atomic_output_dir_unusable_parent_is_named(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OSError, match=str(tmp_path / "file")):
        with atomic_output_dir(tmp_path / "file" / "out"):
            pass

    def deny(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(type(tmp_path), "mkdir", deny)
    with pytest.raises(PermissionError, match=f"into {tmp_path}") as err:
        with atomic_output_dir(tmp_path / "out"):
            pass
    assert err.value.filename == str(tmp_path)


def test_sha256_file_streams_large_files(tmp_path):
    data = np.random.default_rng(0).bytes((5 << 19) + 7)  # 2.5 MiB + 7: several blocks
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f") == hashlib.sha256(data).hexdigest()
