"""ManifestSampler (distributed weighted sampler) and the WebDataset select stage, on toy manifests."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pyarrow as pa
import pytest
import torch
from scipy import stats

from proxyds import ManifestSampler, select_manifest
from proxyds.manifest import write_manifest
from proxyds.sampler import _select_keys, select_keys


def toy(n=50, *, weights=None, status=None, selected=10, index_offset=0):
    """A manifest as a dict of arrays: keys k000.., keep_prob from ``weights`` (default 1..n)."""
    w = np.arange(1, n + 1, dtype=np.float64) if weights is None else np.asarray(weights, dtype=np.float64)
    sel = np.zeros(n, dtype=bool)
    sel[:selected] = True
    return {"index": np.arange(n) + index_offset, "key": [f"k{i:03d}" for i in range(n)],
            "keep_prob": w / w.sum() if w.sum() > 0 else w, "status": ["ok"] * n if status is None else status,
            "selected": sel}


def slices(manifest, world, **kw):
    return [list(ManifestSampler(manifest, num_replicas=world, rank=r, **kw)) for r in range(world)]


@pytest.mark.parametrize("replacement", [False, True])
@pytest.mark.parametrize("world", [2, 3, 4])
def test_rank_slices_are_disjoint_equal_and_one_global_draw(world, replacement):
    m = toy(50)
    parts = slices(m, world, num_samples=12, seed=3, replacement=replacement)
    whole = list(ManifestSampler(m, num_samples=12, seed=3, replacement=replacement))
    assert len(whole) == 12 and {len(p) for p in parts} == {12 // world}
    assert sorted(sum(parts, [])) == sorted(whole)  # the ranks together are the world-size-1 draw
    if not replacement:
        assert len(set(whole)) == 12 and len(set(sum(parts, []))) == 12  # disjoint


def test_uneven_total_pads_or_drops_like_distributed_sampler():
    m = toy(50)
    whole = ManifestSampler(m, num_samples=10, seed=1).draw()
    padded = slices(m, 3, num_samples=10, seed=1)
    assert [len(p) for p in padded] == [4, 4, 4] == [len(ManifestSampler(m, num_samples=10, num_replicas=3, rank=r))
                                                       for r in range(3)]
    assert sorted(sum(padded, [])) == sorted(list(whole) + list(whole[:2]))  # padded from the start of the draw
    dropped = slices(m, 3, num_samples=10, seed=1, drop_last=True)
    assert [len(p) for p in dropped] == [3, 3, 3]
    flat = sum(dropped, [])
    assert len(set(flat)) == 9 and set(flat) == set(whole[:9].tolist())


def test_draw_is_deterministic_per_seed_and_epoch_and_independent_of_world_size():
    m = toy(200)
    a = ManifestSampler(m, num_samples=40, seed=5)
    b = ManifestSampler(m, num_samples=40, seed=5, num_replicas=3, rank=1)
    for e in range(3):
        a.set_epoch(e), b.set_epoch(e)
        assert np.array_equal(a.draw(), b.draw())
    assert list(ManifestSampler(m, num_samples=40, seed=5)) == list(a.__class__(m, num_samples=40, seed=5))
    a.set_epoch(0)
    first = list(a)
    a.set_epoch(1)
    assert set(first) != set(a), "a new epoch must draw a new proxy"
    assert set(first) != set(ManifestSampler(m, num_samples=40, seed=6))
    r = ManifestSampler(m, num_samples=40, seed=5, replacement=True)
    assert np.array_equal(r.draw(2), ManifestSampler(m, num_samples=40, seed=5, replacement=True).draw(2))
    assert not np.array_equal(r.draw(2), r.draw(3))


def test_without_replacement_the_drawn_set_depends_on_keys_not_row_order():
    m = toy(100)
    perm = np.random.default_rng(0).permutation(100)
    shuffled = {k: np.asarray(v)[perm] for k, v in m.items()}
    for e in range(3):
        assert set(ManifestSampler(m, num_samples=20, seed=2).draw(e)) == set(ManifestSampler(shuffled, num_samples=20,
                                                                                             seed=2).draw(e))


def test_inclusion_frequencies_follow_the_weights_without_replacement():
    # k=2 successive weighted sampling has inclusion probability p_i + sum_j p_j p_i / (1 - p_j), exactly.
    w = np.array([1, 2, 3, 5, 8, 13, 21, 34], dtype=np.float64)
    p = w / w.sum()
    pi = p + np.array([sum(p[j] * p[i] / (1 - p[j]) for j in range(8) if j != i) for i in range(8)])
    s, epochs = ManifestSampler(toy(8, weights=w), num_samples=2, seed=11), 3000
    counts = np.zeros(8)
    for e in range(epochs):
        counts[s.draw(e)] += 1
    freq = counts / epochs
    assert np.all(np.abs(freq - pi) < 4.5 * np.sqrt(pi * (1 - pi) / epochs)), (freq, pi)
    # And on a larger manifest the frequencies rank like the weights.
    w = np.random.default_rng(1).gamma(1.0, size=60) + 0.01
    s, counts = ManifestSampler(toy(60, weights=w), num_samples=10, seed=4), np.zeros(60)
    for e in range(400):
        counts[s.draw(e)] += 1
    assert stats.spearmanr(counts, w).statistic > 0.9


def test_with_replacement_empirical_frequency_matches_keep_prob():
    w = np.array([1, 2, 3, 4, 10, 20], dtype=np.float64)
    p, s = w / w.sum(), ManifestSampler(toy(6, weights=w), num_samples=50, replacement=True, seed=9)
    counts = np.bincount(np.concatenate([s.draw(e) for e in range(400)]), minlength=6)
    assert stats.chisquare(counts, p * counts.sum()).pvalue > 1e-3
    assert np.allclose(counts / counts.sum(), p, atol=0.01)


def test_dataset_of_one():
    m = toy(1, selected=1, index_offset=7)
    assert list(ManifestSampler(m)) == [7]
    assert slices(m, 2) == [[7], [7]]  # padded, like DistributedSampler
    assert list(ManifestSampler(m, num_samples=3, replacement=True)) == [7, 7, 7]
    with pytest.raises(ValueError, match="leaves every rank empty"):
        ManifestSampler(m, num_replicas=2, rank=0, drop_last=True)


@pytest.mark.parametrize("replacement", [False, True])
def test_zero_weights_and_skipped_rows_are_never_drawn(replacement):
    w = np.tile([0.0, 1.0, 2.0, 0.0, 3.0], 8)
    status = ["ok" if i % 7 else "skipped: unreadable" for i in range(40)]  # skipped rows keep a positive weight here
    m = toy(40, weights=w, status=status, index_offset=1000)
    allowed = {1000 + i for i in range(40) if w[i] > 0 and i % 7}
    s = ManifestSampler(m, num_samples=len(allowed), replacement=replacement)
    seen = set()
    for e in range(30):
        s.set_epoch(e)
        drawn = set(s)
        assert drawn <= allowed
        seen |= drawn
    assert seen == allowed
    if not replacement:
        assert set(s) == allowed  # drawing every usable row takes them all
        with pytest.raises(ValueError, match=f"num_samples={len(allowed) + 1} exceeds the {len(allowed)} drawable"):
            ManifestSampler(m, num_samples=len(allowed) + 1)


def test_num_samples_defaults_to_selected_or_ratio_and_reads_paths_and_tables(tmp_path):
    m = toy(40, selected=7)
    assert len(ManifestSampler(m)) == 7
    assert len(ManifestSampler(m, ratio=0.25)) == 10
    cols = {**m, "shard": ["s"] * 40, "label": np.zeros(40), "case": np.ones(40), "importance": m["keep_prob"],
            "neighbor": np.zeros(40), "distance": np.zeros(40), "proxy_label": np.zeros(40)}
    write_manifest(tmp_path / "manifest.parquet", cols)
    from_dir, from_table = ManifestSampler(tmp_path, seed=1), ManifestSampler(pa.table(m), seed=1)
    assert list(from_dir) == list(from_table) == list(ManifestSampler(m, seed=1))


def test_defaults_to_torch_distributed_world(monkeypatch):
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "get_world_size", lambda: 3)
    monkeypatch.setattr(torch.distributed, "get_rank", lambda: 2)
    s = ManifestSampler(toy(30), num_samples=9)
    assert (s.num_replicas, s.rank, len(s)) == (3, 2, 3)


@pytest.fixture
def launcher_env(monkeypatch):
    """What torchrun sets for the second of two processes; no process group is initialised."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert not (torch.distributed.is_available() and torch.distributed.is_initialized())
    return monkeypatch


def test_launcher_env_without_a_process_group_is_an_error_not_rank_0_of_1(launcher_env):
    m = toy(30)
    with pytest.raises(RuntimeError, match=r"WORLD_SIZE='2' RANK='1' in the environment.*no torch.distributed "
                                           r"process group.*init the process group.*or pass num_replicas= and rank="):
        ManifestSampler(m, num_samples=8)
    with pytest.raises(RuntimeError, match="num_replicas=2 was given without rank=.*pass num_replicas= and rank="):
        ManifestSampler(m, num_samples=8, num_replicas=2)
    # Explicit arguments still work under the launcher's environment, and give this rank's slice.
    s = ManifestSampler(m, num_samples=8, num_replicas=2, rank=1, seed=4)
    assert (s.num_replicas, s.rank, len(s)) == (2, 1, 4) and list(s) == s.draw()[1::2].tolist()
    launcher_env.setenv("WORLD_SIZE", "two")
    with pytest.raises(RuntimeError, match="WORLD_SIZE='two'.*not an integer"):
        ManifestSampler(m, num_samples=8)
    for single in ("1", ""):  # one process: the single-process default is right
        launcher_env.setenv("WORLD_SIZE", single)
        assert (ManifestSampler(m, num_samples=8).num_replicas, ManifestSampler(m, num_samples=8).rank) == (1, 0)


def test_process_group_wins_over_the_environment(launcher_env):
    launcher_env.setattr(torch.distributed, "is_initialized", lambda: True)
    launcher_env.setattr(torch.distributed, "get_world_size", lambda: 2)
    launcher_env.setattr(torch.distributed, "get_rank", lambda: 1)
    assert (lambda s: (s.num_replicas, s.rank))(ManifestSampler(toy(30), num_samples=8)) == (2, 1)


@pytest.mark.parametrize("replacement", [False, True])
def test_shuffle_false_serves_the_same_draw_in_manifest_order(replacement):
    m = toy(60)
    m["index"] = np.random.default_rng(3).permutation(60) + 100  # manifest order is not index order
    position = {int(i): p for p, i in enumerate(m["index"])}
    kw = dict(num_samples=15, seed=2, replacement=replacement)
    on, off = ManifestSampler(m, **kw), ManifestSampler(m, **kw, shuffle=False)
    for e in range(3):
        drawn = off.draw(e).tolist()
        assert sorted(drawn) == sorted(on.draw(e).tolist())  # the same weighted draw, only its order differs
        assert [position[i] for i in drawn] == sorted(position[i] for i in drawn)
        assert drawn == ManifestSampler(m, **kw, shuffle=False).draw(e).tolist()  # deterministic per (seed, epoch)
    assert off.draw(0).tolist() != on.draw(0).tolist()
    parts = slices(m, 3, **kw, shuffle=False)
    assert sum(([p[i] for p in parts] for i in range(5)), []) == off.draw(0).tolist()  # r::w of the ordered draw


def test_generator_supplies_the_seed_once_and_is_deterministic():
    m = toy(100)

    def sampler(seed, **kw):
        return ManifestSampler(m, num_samples=20, generator=torch.Generator().manual_seed(seed), **kw)

    a, b = sampler(7), sampler(7, num_replicas=2, rank=1)  # ranks seed their generators alike: one global draw
    assert a.seed == b.seed and a.draw(3).tolist() == b.draw(3).tolist()
    assert a.draw(3).tolist() == ManifestSampler(m, num_samples=20, seed=a.seed).draw(3).tolist()
    assert a.draw(0).tolist() == a.draw(0).tolist() != a.draw(1).tolist()  # a function of (seed, epoch)
    assert sampler(8).seed != a.seed
    assert ManifestSampler(m, num_samples=20).seed == 0  # neither seed nor generator: seed 0, like DistributedSampler
    with pytest.raises(ValueError, match=r"give seed or generator, not both \(got seed=1"):
        ManifestSampler(m, num_samples=20, seed=1, generator=torch.Generator())
    with pytest.raises(ValueError, match="generator must be a torch.Generator"):
        ManifestSampler(m, num_samples=20, generator=np.random.default_rng(0))


def test_works_in_a_dataloader():
    class Toy(torch.utils.data.Dataset):
        def __len__(self):
            return 50

        def __getitem__(self, i):
            return torch.tensor(i)

    s = ManifestSampler(toy(50), num_samples=10, num_replicas=2, rank=1, seed=2)
    s.set_epoch(4)
    loader = torch.utils.data.DataLoader(Toy(), batch_size=2, sampler=s)
    batches = list(loader)
    assert len(batches) == 3 and torch.cat(batches).tolist() == list(s)


@pytest.mark.parametrize("kwargs, message", [
    ({"num_samples": 51}, "num_samples=51 exceeds the 50 drawable rows"),
    ({"num_samples": 0}, r"num_samples must be an integer >= 1 \(got 0\)"),
    ({"num_samples": 5, "ratio": 0.1}, "not both"),
    ({"ratio": 1.5}, r"ratio must be in the open interval \(0, 1\) \(got 1.5\)"),
    ({"rank": 2, "num_replicas": 2}, r"rank must be in 0..1 \(got 2\)"),
    ({"rank": -1, "num_replicas": 2}, r"rank must be an integer >= 0 \(got -1\)"),
    ({"num_replicas": 0, "rank": 0}, "num_replicas must be an integer >= 1"),
    ({"seed": -3}, r"seed must be an integer >= 0 \(got -3\)"),
])
def test_bad_arguments_name_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ManifestSampler(toy(50), **kwargs)


@pytest.mark.parametrize("edit, message", [
    (lambda m: {k: v[:0] for k, v in m.items()}, "manifest is empty"),
    (lambda m: {**m, "keep_prob": np.r_[-0.1, m["keep_prob"][1:]]}, "1 bad values, first -0.1 at key 'k000'"),
    (lambda m: {**m, "keep_prob": np.r_[m["keep_prob"][:3], np.nan, m["keep_prob"][4:]]}, "first nan at key 'k003'"),
    (lambda m: {**m, "keep_prob": np.zeros(50)}, "no drawable rows"),
    (lambda m: {k: v for k, v in m.items() if k != "keep_prob"}, r"missing columns \['keep_prob'\]"),
    (lambda m: {k: v for k, v in m.items() if k != "selected"}, "no 'selected' column"),
    (lambda m: [1, 2, 3], "must be a path, a pyarrow Table or a dict"),
])
def test_bad_manifests_are_named(edit, message):
    with pytest.raises(ValueError, match=message):
        ManifestSampler(edit(toy(50)))
    with pytest.raises(ValueError, match="set_epoch|epoch must be"):
        ManifestSampler(toy(50)).set_epoch(-1)


def _write_tars(root, keys_per_shard):
    import webdataset as wds

    urls = []
    for s, keys in enumerate(keys_per_shard):
        url = str(root / f"train-{s:06d}.tar")
        with wds.TarWriter(url) as w:
            for k in keys:
                w.write({"__key__": k, "cls": b"1", "txt": k.encode()})
        urls.append(url)
    return urls


def test_select_stage_keeps_exactly_the_selected_keys(tmp_path):
    import webdataset as wds

    m = toy(12, selected=0)
    m["selected"][[0, 3, 4, 11]] = True
    keys = m["key"]
    urls = _write_tars(tmp_path, [keys[:5], keys[5:]])
    stage = select_manifest(m)
    got = [s["__key__"] for s in wds.WebDataset(urls, shardshuffle=False).compose(stage)]
    assert got == ["k000", "k003", "k004", "k011"]
    pipe = wds.DataPipeline(wds.SimpleShardList(urls), wds.tarfile_to_samples(), pickle.loads(pickle.dumps(stage)))
    assert [s["__key__"] for s in pipe] == got
    # The plain generator and the curried form, on a toy stream; another boolean column.
    toy_stream = [{"__key__": k} for k in ("a", "b", "c")]
    assert [s["__key__"] for s in _select_keys(iter(toy_stream), frozenset({"c", "a"}))] == ["a", "c"]
    assert [s["__key__"] for s in select_keys(["b"])(iter(toy_stream))] == ["b"]
    m["in_val"] = ~m["selected"]
    assert len([s for s in wds.WebDataset(urls, shardshuffle=False).compose(select_manifest(m, column="in_val"))]) == 8
    with pytest.raises(ValueError, match="column 'index' must be boolean"):
        select_manifest(m, column="index")
    with pytest.raises(ValueError, match=r"missing columns \['nope'\]"):
        select_manifest(m, column="nope")


def test_sampler_is_picklable_for_dataloader_workers():
    s = ManifestSampler(toy(20), num_samples=5, seed=3)
    s.set_epoch(2)
    buf = io.BytesIO()
    pickle.dump(s, buf)
    assert list(pickle.loads(buf.getvalue())) == list(s)


@pytest.mark.slow  # ~10-25 s: the first optimizer imports torch._dynamo, probes() counts MACs of 12 models
def test_train_ddp_example_runs_in_one_process(tiny_mnist1d, tmp_path, monkeypatch, caplog):
    """examples/train_ddp.py without torchrun, on a hand-written manifest over the tiny MNIST-1D."""
    import json
    import logging
    import runpy
    from pathlib import Path

    m = toy(480, selected=48)
    cols = {**m, "shard": ["s"] * 480, "label": np.zeros(480), "case": np.ones(480), "importance": m["keep_prob"],
            "neighbor": np.zeros(480), "distance": np.zeros(480), "proxy_label": np.zeros(480)}
    write_manifest(tmp_path / "manifest.parquet", cols)
    (tmp_path / "proxy.json").write_text(json.dumps({
        "config": {"dataset": f"hf:{tiny_mnist1d}", "input_column": "x", "label_column": None},
        "summary": {"source": f"hf:{tiny_mnist1d.name}", "class_names": [str(i) for i in range(10)]}}))
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    example = Path(__file__).parents[1] / "examples" / "train_ddp.py"
    monkeypatch.setattr("sys.argv", [str(example), str(tmp_path), "--epochs", "2", "--batch-size", "16",
                                     "--replacement"])
    with caplog.at_level(logging.INFO, logger="train_ddp"):
        runpy.run_path(str(example), run_name="__main__")
    assert "epoch 1: 3 batches here" in caplog.text and "reference-split accuracy" in caplog.text
