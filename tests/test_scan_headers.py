"""A scan that does not decode inputs reads a local WebDataset shard's tar headers and label
fields only, and finds exactly what the streamed read finds: keys, labels, statuses, shards."""

from __future__ import annotations

import io
import tarfile

import numpy as np
import pytest

from proxyds.pipeline import scan as scan_module
from proxyds.pipeline.scan import scan
from proxyds.sources.wds import WdsSource


def _tar(path, members, fmt=tarfile.USTAR_FORMAT):
    with tarfile.open(path, "w", format=fmt) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            if fmt == tarfile.PAX_FORMAT:
                info.pax_headers = {"comment": "an extended header the header walk does not read"}
            tf.addfile(info, io.BytesIO(data))


def _shards(root, fmt=tarfile.USTAR_FORMAT):
    """Two shards: good examples, and each kind of problem the scan itself finds without decoding."""
    good = [(f"a{i:03d}.{ext}", data) for i in range(6) for ext, data in (("npy", b"x" * (i + 1)), ("cls", b"%d" % (i % 3)))]
    odd = [("b000.npy", b"x"), ("b000.cls", b" 2\n"),  # a label with blanks parses as 2
           ("b001.npy", b"x"),  # no label field
           ("b002.npy", b"x"), ("b002.cls", b"cat"),  # a label that is not an integer
           ("b003.cls", b"1"),  # no input field
           ("b004.npy", b"x"), ("b004.CLS", b"-1"),  # upper-case extension; a negative label
           ("a001.npy", b"x"), ("a001.cls", b"1"),  # a duplicate key across shards
           ("__meta__", b"{}"), ("b005.npy", b"x"), ("b005.cls", b"0")]
    _tar(root / "train-000000.tar", good, fmt)
    _tar(root / "train-000001.tar", odd, fmt)
    return WdsSource(str(root), "train")


def _index(source, monkeypatch, streamed: bool):
    if streamed:
        monkeypatch.setattr(scan_module, "tar_plan", lambda path: None)
    read = []
    real = source.shard_examples
    monkeypatch.setattr(source, "shard_examples", lambda *a: read.append(a) or real(*a))
    index = scan(source, "train", input_column="npy", on_error="skip")
    monkeypatch.undo()
    return index, read


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.PAX_FORMAT])
def test_headers_find_what_the_stream_finds(tmp_path, monkeypatch, fmt):
    source = _shards(tmp_path, fmt)
    fast, fast_read = _index(source, monkeypatch, streamed=False)
    slow, slow_read = _index(source, monkeypatch, streamed=True)
    assert list(fast.keys) == list(slow.keys) and len(fast) == 13
    assert np.array_equal(fast.labels, slow.labels) and np.array_equal(fast.shard_ids, slow.shard_ids)
    assert list(fast.status) == list(slow.status)
    status = dict(zip(fast.keys, fast.status))
    assert status["b000"] == "ok" and fast.labels[list(fast.keys).index("b000")] == 2
    assert [status[k].split(": ", 1)[1] for k in ("b001", "b002", "b003", "b004")] == [
        "no label ('cls' missing)", "label 'cat' is not an integer", "no input field 'npy'", "negative label -1"]
    assert list(fast.status).count("skipped: duplicate key") == 1
    assert len(slow_read) == 2  # the streamed read opened both shards
    # plain ustar shards are read from their headers; a PAX shard is streamed, as the copy pass does
    assert len(fast_read) == (0 if fmt == tarfile.USTAR_FORMAT else 2)


@pytest.mark.parametrize("damage", ["truncated", "garbage after a zero block"])
def test_damaged_shards_are_found_as_before(tmp_path, monkeypatch, damage):
    source = _shards(tmp_path)
    path = tmp_path / "train-000000.tar"
    data = path.read_bytes()
    end = data.index(bytes(1024), 512)  # the end-of-archive marker: after the last member's padded data
    path.write_bytes(data[:end - 700] if damage == "truncated" else data[:end] + bytes(512) + b"junk" * 300)
    fast, _ = _index(source, monkeypatch, streamed=False)
    slow, _ = _index(source, monkeypatch, streamed=True)
    assert fast.shard_errors == slow.shard_errors and fast.shard_errors  # found, and worded, as before
    assert list(fast.keys) == list(slow.keys) and list(fast.status) == list(slow.status)
