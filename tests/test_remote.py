"""Remote inputs: builds read parquet and WebDataset shards from a real S3 API (moto's server on
127.0.0.1, reached with s3fs through the standard AWS environment variables) and from
WebDataset ``pipe:`` commands, give the same proxy as from the same files on local disk, and
find damaged or missing remote input as they find local damage, naming the URL."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import socket
import tarfile

import pyarrow.parquet as pq
import pytest

from proxyds.cli import main
from proxyds.config import BuildConfig
from proxyds.pipeline.build import build
from proxyds.pipeline.scan import BadInput
from proxyds.sources import open_source, remote
from proxyds.sources.wds import tar_damage
from proxyds.verifier import verify

from helpers import tiny_config, trained_probes, write_wds_copy

BUCKET = "proxyds-test"
COLUMNS = ["index", "key", "shard", "label", "case", "selected", "proxy_label", "status"]


@pytest.fixture(scope="session")
def s3(tmp_path_factory):
    """An S3 server on a free local port, a bucket in it, and the s3fs filesystem a build will use."""
    moto_server = pytest.importorskip("moto.server")
    pytest.importorskip("s3fs")
    boto3 = pytest.importorskip("boto3")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the server's line per request
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    with pytest.MonkeyPatch.context() as env:
        for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                            "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}.items():
            env.setenv(name, value)
        # boto3 creates the bucket: s3fs's mkdir asks first whether it exists, and moto's first
        # error response scans botocore's whole service catalogue (seconds on a busy machine)
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        fs, _ = remote.url_fs(f"s3://{BUCKET}")
        yield fs
    server.stop()


def upload(fs, files, prefix: str) -> str:
    """Put local files under ``s3://BUCKET/prefix/`` (keeping their names); the folder's URL."""
    for f in files:
        fs.put_file(str(f), f"{BUCKET}/{prefix}/{f.name}")
    return f"s3://{BUCKET}/{prefix}"


def manifest(out):
    return pq.read_table(out / "manifest.parquet", columns=COLUMNS).to_pydict()


def data_digests(out):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((out / "data").iterdir())}


def probe_args(built):
    return [a for role, path in trained_probes(built) for a in ("--probe", f"{role}={path}")]


@pytest.fixture(scope="module")
def wds_local(parquet_proxy, tmp_path_factory):
    """The tiny dataset as WebDataset shards on disk (3 train shards, 1 test shard) and its proxy,
    built with the session's trained probes."""
    root = tmp_path_factory.mktemp("wds-local")
    src = write_wds_copy(parquet_proxy.src, root / "wds")
    out = root / "out"
    build(tiny_config(f"wds:{src}", out, input_column="x.npy", probe_checkpoints=trained_probes(parquet_proxy)))
    return src, out


def test_hf_build_from_s3_equals_the_local_build(s3, parquet_proxy, tmp_path):
    url = upload(s3, sorted((parquet_proxy.src / "data").glob("*.parquet")), "mnist1d/data").rsplit("/", 1)[0]
    out = tmp_path / "out"
    result = build(tiny_config(f"hf:{url}", out, probe_checkpoints=trained_probes(parquet_proxy)))
    assert json.loads((out / "proxy.json").read_text())["config"]["dataset"] == f"hf:{url}"
    assert result.summary["num_selected"] == 48
    assert verify(out).ok
    assert manifest(out) == manifest(parquet_proxy.out)
    assert data_digests(out) == data_digests(parquet_proxy.out)


def test_wds_build_from_s3_on_the_command_line_equals_the_local_build(s3, parquet_proxy, wds_local, tmp_path):
    src, local_out = wds_local
    url = upload(s3, sorted(src.glob("*.tar")), "wds")
    out = tmp_path / "out"
    code = main(["build", f"wds:{url}/train-{{000000..000002}}.tar", "--reference", f"wds:{url}/test-000000.tar",
                 "--space", "resnet1d", "--input-column", "x.npy", "--ratio", "0.1", "--probe-epochs", "1",
                 "--label-reduction", "off", "--allow-weak-probes", "--batch-size", "64", "--pca-components", "16",
                 "--rows-per-shard", "20", "--device", "cpu", "--workers", "2", "--workdir", str(tmp_path / "work"),
                 "--out", str(out), *probe_args(parquet_proxy)])
    assert code == 0
    assert main(["verify", str(out)]) == 0
    assert manifest(out) == manifest(local_out)
    assert data_digests(out) == data_digests(local_out)


def test_wds_build_from_pipe_commands_selects_what_the_local_build_selects(parquet_proxy, wds_local, tmp_path):
    src, local_out = wds_local
    out = tmp_path / "out"
    build(tiny_config(f"wds:pipe:cat {src}/train-{{000000..000002}}.tar", out, input_column="x.npy",
                      reference=f"wds:pipe:cat {src}/test-000000.tar", probe_checkpoints=trained_probes(parquet_proxy)))
    assert verify(out).ok
    got, want = manifest(out), manifest(local_out)
    assert got["shard"][0] == f"pipe:cat {src}/train-000000.tar"  # a pipe: shard is named by its command
    assert {k: v for k, v in got.items() if k != "shard"} == {k: v for k, v in want.items() if k != "shard"}
    assert data_digests(out) == data_digests(local_out)


def _tar(members: int = 3) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for i in range(members):
            data = bytes([i]) * 3000
            info = tarfile.TarInfo(f"k{i}.bin")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


INTACT = _tar()
DAMAGED = {
    "intact": INTACT,
    "cut mid-member": INTACT[:4000],
    "cut before the end marker": INTACT[: 3 * (512 + 3072)],
    "garbage header": INTACT[:512 + 3072] + b"x" * 512 + INTACT[2 * 512 + 3072:],
    "garbage after the end": INTACT[: 3 * (512 + 3072)] + b"junk" * 256,
    "not a tar": b"hello" * 300,
}


@pytest.mark.parametrize("case", list(DAMAGED))
def test_tar_damage_is_found_alike_locally_on_s3_and_through_a_pipe(s3, tmp_path, case):
    path = tmp_path / "shard.tar"
    path.write_bytes(DAMAGED[case])
    url = upload(s3, [path], f"damage/{case.replace(' ', '-')}") + "/shard.tar"
    local = tar_damage(str(path))
    assert (local is None) == (case == "intact")
    assert tar_damage(url) == local  # the same walk, seeking through the S3 object by range requests
    assert (tar_damage(f"pipe:cat {path}") is None) == (case == "intact")  # one pass over the stream


def test_a_failing_pipe_command_is_a_damaged_shard():
    assert tar_damage("pipe:exit 3").startswith("cannot be read")


def test_damaged_and_missing_remote_shards_are_named_by_url(s3, wds_local, tmp_path):
    src, _ = wds_local
    copy = tmp_path / "bad"
    copy.mkdir()
    for f in src.glob("*.tar"):
        data = f.read_bytes()
        (copy / f.name).write_bytes(data[: len(data) // 2] if f.name == "train-000001.tar" else data)
    url = upload(s3, sorted(copy.glob("*.tar")), "bad")
    with pytest.raises(BadInput, match=rf"train shard train-000001.tar \({url}/train-000001.tar\) is damaged"):
        build(tiny_config(f"wds:{url}", tmp_path / "out", input_column="x.npy"))  # a folder URL: {split}-*.tar
    with pytest.raises(FileNotFoundError, match=rf"2 of 5 shards .* e\.g\. {url}/train-000003\.tar"):
        open_source(f"wds:{url}/train-{{000000..000004}}.tar", "train")
    with pytest.raises(FileNotFoundError, match=rf"hf:s3://{BUCKET}/nothing: no data files"):
        open_source(f"hf:s3://{BUCKET}/nothing", "train")


def test_remote_fingerprint_follows_the_object_content(s3, tmp_path):
    path = tmp_path / "train-00000-of-00001.parquet"
    path.write_bytes(b"one")
    url = upload(s3, [path], "fingerprint") + "/" + path.name
    first = remote.file_stats([url])
    assert remote.file_stats([url]) == first
    path.write_bytes(b"two")
    upload(s3, [path], "fingerprint")
    assert remote.file_stats([url]) != first  # a changed object changes the scan's cache key
    assert remote.file_stats([url, "pipe:cat x.tar"]) is None  # a command's output has no fingerprint


def test_out_must_be_a_filesystem_path(tmp_path):
    with pytest.raises(ValueError, match="out must be a local or shared filesystem path, not a URL"):
        BuildConfig(dataset="hf:s3://b/d", out="s3://b/proxy", ratio=0.1)
    with pytest.raises(ValueError, match="workdir must be a local or shared filesystem path"):
        BuildConfig(dataset="hf:s3://b/d", out=tmp_path / "o", workdir="gs://b/work", ratio=0.1)
    with pytest.raises(ValueError, match="pipe: commands are read by wds: sources only"):
        open_source("hf:pipe:cat x.parquet", "train")
