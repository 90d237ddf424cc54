"""The build under torchrun (gloo, CPU): the manifest is byte-identical for world sizes 1, 2
and 3 given the same probe checkpoints, including a shard count not divisible by 3."""

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


@pytest.mark.parametrize("world", [2, 3])
def test_torchrun_build_matches_single_process(single, world):
    root, src, ckpts = single
    out = root / f"world{world}"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={world}",
           "-m", "proxyds", "build", f"hf:{src}", "--space", "resnet1d", "--input-column", "x", "--ratio", "0.1",
           "--out", str(out), "--workdir", str(root / f"work{world}"), "--pca-components", "16",
           "--rows-per-shard", "20", "--label-reduction", "off", "--device", "cpu", "--allow-weak-probes", "--batch-size", "64", *ckpts]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("proxy written to") == world  # every rank reports the same summary
    assert (out / "manifest.parquet").read_bytes() == (root / "single" / "manifest.parquet").read_bytes()
    a, b = (json.loads((d / "proxy.json").read_text()) for d in (out, root / "single"))
    assert a["files"] == b["files"] and a["summary"] == b["summary"]  # every shard and the card byte-identical
    # (the recorded config differs only in how probes were obtained: checkpoints vs. training)
