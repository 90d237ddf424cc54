"""WdsShardWriter writes the bytes tarfile (PAX format) wrote before it, with fields given as
bytes or as file ranges copied by the kernel or through a buffer."""

from __future__ import annotations

import errno
import io
import os
import tarfile

import numpy as np
import pytest

from proxyds.errors import BadInput
from proxyds.sinks.filecopy import FileRange
from proxyds.sinks.wds import WdsShardWriter, _member

SIZES = (0, 1, 511, 512, 513, 20_000, 65_535, 65_536, 200_001)  # small ranges are read, large ones copied


def _examples(src):
    """Keys with plain, long (> 100 chars: a PAX header) and non-ASCII names; fields of every
    size around the block size, half of them as ranges of the file ``src``."""
    rng = np.random.default_rng(0)
    blob, out = bytearray(), []
    for i, key in enumerate(["a", "k" * 120, "ключ", "b", "c"]):
        fields = {}
        for j, size in enumerate(SIZES):
            data = rng.bytes(size)
            if (i + j) % 2:
                fields[f"f{j}"] = data
            else:
                fields[f"f{j}"] = FileRange(str(src), len(blob), size)
                blob += data
        out.append((key, fields))
    src.write_bytes(bytes(blob))
    return out


def _tarfile_way(path, examples, src):
    """What WdsShardWriter did with tarfile, one shard."""
    data = src.read_bytes()
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT, encoding="utf-8") as tf:
        for key, fields in examples:
            for field in sorted(fields):
                v = fields[field]
                v = data[v.offset:v.offset + v.size] if isinstance(v, FileRange) else v
                tf.addfile(_member(f"{key}.{field}", len(v)), io.BytesIO(v))


def _refuse(*args):
    raise OSError(errno.EXDEV, "Invalid cross-device link")


@pytest.mark.parametrize("copy", ["kernel", "missing", "refused"])
def test_wds_writer_bytes_equal_tarfile_pax_output(tmp_path, monkeypatch, copy):
    examples = _examples(tmp_path / "src.bin")
    if copy == "missing":  # no os.copy_file_range: through the buffer
        monkeypatch.delattr(os, "copy_file_range", raising=False)
    elif copy == "refused":  # another file system on an older kernel: through the buffer from then on
        monkeypatch.setattr(os, "copy_file_range", _refuse)
    with WdsShardWriter(tmp_path / "out", "train", maxcount=3) as w:
        for key, fields in examples:
            w.write(key, fields)
    assert w.counts == [3, 2]
    for shard, part in zip(w.paths, (examples[:3], examples[3:])):
        _tarfile_way(tmp_path / "want.tar", part, tmp_path / "src.bin")
        assert shard.read_bytes() == (tmp_path / "want.tar").read_bytes()


def test_range_past_the_end_of_its_file_is_an_input_error(tmp_path):
    (tmp_path / "src.bin").write_bytes(b"x" * 100)
    with pytest.raises(BadInput, match="ends before byte 150"), \
            WdsShardWriter(tmp_path / "out", "train") as w:
        w.write("a", {"jpg": FileRange(str(tmp_path / "src.bin"), 50, 100)})
    assert not list((tmp_path / "out").glob("*.tar"))  # the failed shard is removed
    with pytest.raises(ValueError, match="offset must be an int >= 0"), \
            WdsShardWriter(tmp_path / "out", "train") as w:
        w.write("a", {"jpg": FileRange("x", -1, 3)})
