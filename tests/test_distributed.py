"""The build under torchrun (gloo, CPU): given the same probe checkpoints, OUT is byte-identical
for world sizes 1, 2 and 3, in both output formats, with every rank writing its share of the
shards (8 output shards: not divisible by 3)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from proxyds.pipeline.build import build
from proxyds.presets import materialize_mnist1d

from helpers import TINY_MNIST1D, tiny_config


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    root = tmp_path_factory.mktemp("dist")
    src = materialize_mnist1d(TINY_MNIST1D, root=root / "data", rows_per_shard=120)  # 4 train shards
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the ranks run (OMP_NUM_THREADS=1): kernels may round differently per thread count
    try:
        build(tiny_config(f"hf:{src}", root / "single", workdir=root / "work"))
    finally:
        torch.set_num_threads(threads)
    probes = root / "work" / "probes"
    ckpts = [f"--probe={role}={next(probes.glob(f'resnet1d-{c}-*.pt'))}"
             for role, c in (("lower", "B8-K3-M2"), ("upper", "B32-K5-M4"))]
    return root, src, ckpts


def _build(single, world: int, fmt: str):
    """``proxyds build -v`` in ``world`` processes (one: no torchrun); returns OUT and stderr."""
    root, src, ckpts = single
    out = root / f"{fmt}-world{world}"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", PROXYDS_DIST_TIMEOUT="240")
    launch = [] if world == 1 else ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={world}"]
    cmd = [sys.executable, *launch, "-m", "proxyds", "build", f"hf:{src}", "-v", "--space", "resnet1d",
           "--input-column", "x", "--ratio", "0.1", "--format", fmt, "--out", str(out),
           "--workdir", str(root / f"work-{fmt}{world}"), "--pca-components", "16", "--rows-per-shard", "20",
           "--label-reduction", "off", "--device", "cpu", "--allow-weak-probes", "--batch-size", "64", *ckpts]
    # a new session, so on a timeout every rank (torchrun's children) is killed with it
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.communicate()
        raise
    assert proc.returncode == 0, stderr[-3000:]
    assert stdout.count("proxy written to") == world  # every rank reports the same summary
    return out, stderr


def _single_process(single, fmt: str):
    """The one-process build to compare with: the fixture's (parquet), or a wds one, built once."""
    root = single[0]
    if fmt == "parquet":
        return root / "single"
    out = root / "wds-world1"
    return out if (out / "proxy.json").exists() else _build(single, 1, fmt)[0]


@pytest.mark.parametrize("world, fmt", [
    (2, "parquet"), (3, "wds"),
    pytest.param(2, "wds", marks=pytest.mark.slow), pytest.param(3, "parquet", marks=pytest.mark.slow),
])
def test_torchrun_build_matches_single_process(single, world, fmt):
    ref = _single_process(single, fmt)
    out, stderr = _build(single, world, fmt)
    for rank in range(world):  # writing really was parallel: each rank wrote its own shards (of 8)
        assert f"rank {rank}/{world} wrote train shards {list(range(rank, 8, world))} of 8" in stderr, stderr[-3000:]
    files = sorted(p.relative_to(ref) for p in ref.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    for f in files:  # every shard, wids index, manifest and the card byte-identical
        if f.name != "proxy.json":
            assert (out / f).read_bytes() == (ref / f).read_bytes(), f
    a, b = (json.loads((d / "proxy.json").read_text()) for d in (out, ref))
    assert a["files"] == b["files"] and a["splits"] == b["splits"] and a["summary"] == b["summary"]
    # (the recorded config differs only in how probes were obtained: checkpoints vs. training)
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]  # no temp dir left


def test_collectives_time_out_as_the_environment_says(monkeypatch):
    from proxyds.pipeline.distributed import dist_timeout

    monkeypatch.delenv("PROXYDS_DIST_TIMEOUT", raising=False)
    assert dist_timeout().total_seconds() == 1800
    monkeypatch.setenv("PROXYDS_DIST_TIMEOUT", "90")
    assert dist_timeout().total_seconds() == 90
    for bad in ("0", "-5", "soon", "nan", "inf"):
        monkeypatch.setenv("PROXYDS_DIST_TIMEOUT", bad)
        with pytest.raises(ValueError, match=f"PROXYDS_DIST_TIMEOUT='{bad}' is not a positive number"):
            dist_timeout()
