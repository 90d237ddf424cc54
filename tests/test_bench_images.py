"""tools/bench_{scoring,memory,copy,build}.py: each benchmark's core runs on 64 tiny images and
returns finite positive numbers."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.slow  # each runs a benchmark core end to end (about a minute together)

_TOOLS = Path(__file__).resolve().parents[1] / "tools"


def _load(name: str):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, _TOOLS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


bench_scoring = _load("bench_scoring")
bench_memory = _load("bench_memory")
bench_copy = _load("bench_copy")
bench_build = _load("bench_build")


def _positive(x) -> bool:
    return isinstance(x, float) and math.isfinite(x) and x > 0


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bench-images")
    return bench_scoring.ensure_data(root, train=64, val=16, classes=4, size=(32, 48), per_shard=16, workers=1)


def test_scoring_core(data):
    rows = bench_scoring.measure(data, workers=(0,), rounds=1, batch_size=16)
    assert [r["variant"] for r in rows] == ["bare loop", "score_split (collect)", "score_split + NeighborMap"]
    for r in rows:
        assert r["examples"] == 64
        assert _positive(r["throughput"]) and _positive(r["ratio"]) and _positive(r["median_s"])


def test_memory_core(data, tmp_path):
    ckpts = bench_memory.ensure_checkpoints(tmp_path, num_classes=4)
    assert set(ckpts) == {"lower", "upper"} and all(p.exists() for p in ckpts.values())
    res = bench_memory.run_build(data, ckpts, workers=0, ratio=0.25)
    assert _positive(res["max_rss_mib"]) and _positive(res["seconds"])
    assert res["tree_rss_mib"] >= 0


def test_copy_core(data, tmp_path):
    rows, notes = bench_copy.measure(data, ratios=(0.5,), rounds=1, modes=("warm",), out_root=tmp_path)
    assert notes["examples"] == 64 and notes["bytes"] > 0
    assert [r["variant"] for r in rows] == ["raw read (1 MiB blocks)", "copy_split (direct), ratio 0.5",
                                            "copy_split_streamed (before), ratio 0.5"]
    for r in rows:
        assert _positive(r["mb_s"]) and _positive(r["ex_s"]) and _positive(r["ratio"])
    found = bench_copy.verdicts(rows)  # measure() raised if the two ways wrote different bytes
    assert len(found) == 1 and found[0].startswith("- warm, ratio 0.5: ") and "goal 0.7" in found[0]
    assert bench_copy.raw_read([str(p) for p in sorted(data.glob("train-*.tar"))]) == notes["bytes"]


@pytest.mark.parametrize("reason", [0, 250])
def test_memory_keys_case(tmp_path, reason):
    """The keys case's child workload on a tiny source: the long reason goes through the scan."""
    bench_memory.child_keys(3000, reason, tmp_path)
    m = pq.read_table(tmp_path / "manifest.parquet").to_pandas()
    skipped = m[m["status"] != "ok"]
    assert len(m) == 3000 and len(skipped) == (1 if reason else 0)
    assert all(len(s) == len("skipped: ") + reason for s in skipped["status"])


@pytest.mark.parametrize("whole", [False, True])
def test_memory_reference_case(tmp_path, whole):
    bench_memory.child_reference(700, 96, tmp_path, whole=whole)
    assert not list(tmp_path.iterdir())  # the spill is gone


def test_build_core(data):
    """The whole-build row's core: a real build (subprocess, given random-init probes) and the floor
    (raw read + bare decode + forward) over the same tars, both counted whole."""
    res = bench_build.measure(data.parent, space="tiny_spaces:tiny2d", classes=4, rounds=1, ratio=0.25,
                              batch_size=16)
    (b,), (f,) = res["builds"], res["floors"]
    assert _positive(b["wall"]) and _positive(f["wall"]) and b["cpu"] > 0 and f["cpu"] > 0
    assert {"scan", "score_train", "write"} <= set(b["stages"])
    assert f["parts"]["decode + forward train"][2] == 64 and f["parts"]["decode + forward val"][2] == 16
    assert res["input_bytes"] == sum(p.stat().st_size for p in data.glob("*.tar"))
