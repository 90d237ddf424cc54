"""Spreading `proxyds evaluate`'s runs: over --workers processes (a source's runs too, each with
DataLoader workers of its own) and over torchrun ranks (each rank trains whole runs), with the
same results as one process; and --device cuda failing clearly where there is no CUDA."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import torch

from proxyds.cli import main
from proxyds.harness import spread

pytestmark = pytest.mark.usefixtures("hf_offline")

# a smoke run on the tiny hf source (one-epoch probes on a few hundred examples may sit at chance)
SOURCE = ["--space", "cnn1d", "--input-column", "x", "--tiny", "--proxy-seeds", "1", "--epochs", "1",
          "--build", "probe_epochs=1", "--build", "allow_weak_probes=true", "--build", "pca_components=4",
          "--build", "batch_size=32"]


def test_share_partitions_the_runs():
    for n in range(8):
        for size in (1, 2, 3):
            shares = [spread.share(n, r, size) for r in range(size)]
            assert sorted(i for s in shares for i in s) == list(range(n))  # every run once, by one rank
            assert max(map(len, shares)) - min(map(len, shares)) <= 1
    assert spread.share(7, 1, 3) == [1, 4]
    with pytest.raises(ValueError, match="rank must be in"):
        spread.share(4, 2, 2)


def test_loader_workers_fit_the_cpus(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    image, sequence = (3, 32, 32), (1, 40)
    assert spread.loader_workers(image, None, 1) == 8  # the build's default, min(8, CPUs - 1)
    assert spread.loader_workers(image, None, 4) == 3  # 4 processes x (1 + 3 loader workers) = 16 CPUs
    assert spread.loader_workers(image, None, 16) == 0
    assert spread.loader_workers(image, 5, 4) == 5  # --build workers=5 is taken as given
    assert spread.loader_workers(sequence, None, 2) == 0


def _accuracies(results: dict) -> dict:
    return {"full": [c["full"] for c in results["configs"]],
            **{f"{sel}/{r}": e["accuracy"] for sel, by in results["proxies"].items() for r, e in by.items()}}


@pytest.mark.slow
def test_workers_train_a_sources_runs_in_processes(tiny_mnist1d, tmp_path):
    """--workers 2 on a source: the same runs (seeds, batches) as --workers 1, the same accuracies to the
    bit (single-thread processes both), each run reading through a DataLoader worker of its own."""
    results = {}
    for n in (1, 2):
        out = tmp_path / f"w{n}"
        assert main(["evaluate", f"hf:{tiny_mnist1d}", "--out", str(out), "--cache", str(tmp_path / f"cache{n}"),
                     "--workers", str(n), "--build", "workers=1", *SOURCE]) == 0
        results[n] = json.loads((out / "results.json").read_text())
    assert _accuracies(results[1]) == _accuracies(results[2])
    assert results[1]["timing"]["trained_runs"] == results[2]["timing"]["trained_runs"] == 3 * 2 + 2 * 3


def test_a_source_harness_travels_to_a_training_process(tiny_mnist1d, tmp_path):
    """What a --workers process receives: the harness pickled, its space (and the plan's) found
    again from its spec, the same run keys, and its loaders' DataLoader workers as configured."""
    import pickle

    from proxyds.harness.evaluate import EvaluateConfig, _Job
    from proxyds.harness.sources import open_source_data
    from proxyds.harness.streamed import StreamHarness
    from proxyds.spaces import resolve_space

    cfg = EvaluateConfig.from_source(f"hf:{tiny_mnist1d}", tmp_path / "r", space="cnn1d",
                                     build={"input_column": "x", "workers": 2})
    data = open_source_data(cfg.data, cfg.space, tmp_path / "work", "cpu")
    harness = StreamHarness(data, resolve_space("cnn1d"), cfg.recipe, tmp_path / "runs", workers=2, space_spec="cnn1d")
    there = pickle.loads(pickle.dumps(harness))
    assert there.space is harness.space and there.data.plan.space is harness.space
    job = _Job(harness.space.configs[0].name, 0, None)
    assert there._path(job) == harness._path(job) and there.loader_workers == 2
    assert harness._key_extra() == {"shuffle_streams": 2}  # 3 train shards read by 2 interleaved streams


def test_device_cuda_fails_clearly_without_cuda(tiny_mnist1d, tmp_path, monkeypatch, capsys):
    """Before any data is read: the message names the device asked for and what there is."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    cache = tmp_path / "cache"
    for what in ([f"hf:{tiny_mnist1d}", *SOURCE], ["tiny"]):
        assert main(["evaluate", *what, "--out", str(tmp_path / "o"), "--cache", str(cache), "--device", "cuda"]) == 1
        err = capsys.readouterr().err
        assert "device 'cuda'" in err and "no CUDA device" in err and "available: cpu" in err, err
        assert not cache.exists()  # nothing scanned, trained or cached


def _run(cmd: list[str], env: dict, timeout: int) -> subprocess.CompletedProcess:
    """``cmd`` in its own session: on a timeout the launcher and every rank it started are killed."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


@pytest.mark.slow
@pytest.mark.parametrize("what", ["tiny", "hf"])
def test_torchrun_spreads_runs_over_ranks(what, tiny_mnist1d, tmp_path):
    """Two ranks (gloo, CPU) give the numbers one process gives, each rank training a share of the runs."""
    args = ["tiny"] if what == "tiny" else [f"hf:{tiny_mnist1d}", *SOURCE, "--build", "workers=0"]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", PROXYDS_CACHE=str(tmp_path / "data"))
    results = {}
    for world in (1, 2):
        out = tmp_path / f"world{world}"
        launch = ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={world}"] if world > 1 else []
        done = _run([sys.executable, *launch, "-m", "proxyds", "evaluate", *args, "--out", str(out),
                     "--cache", str(tmp_path / f"cache{world}"), "--device", "cpu"], env, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        results[world] = json.loads((out / "results.json").read_text())
    one, two = results[1], results[2]
    assert _accuracies(one) == _accuracies(two)
    for sel, by in one["proxies"].items():
        for ratio, entry in by.items():
            assert entry["metrics"] == two["proxies"][sel][ratio]["metrics"]
    assert one["noise_ceiling"] == two["noise_ceiling"] and one["baselines"] == two["baselines"]
    by_rank = two["timing"]["trained_runs_by_rank"]
    assert len(by_rank) == 2 and min(by_rank) > 0 and sum(by_rank) == one["timing"]["trained_runs"]
    assert "trained_runs_by_rank" not in one["timing"]

