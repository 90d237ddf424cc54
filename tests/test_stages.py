"""Pipeline stages called on plain arrays, without a dataset, probes or a build."""

from __future__ import annotations

import numpy as np
import pytest

from proxyds.config import BuildConfig
from proxyds.pipeline.sample import sample
from proxyds.pipeline.scan import SplitIndex
from proxyds.pipeline.score import ReferenceScores, TrainScores
from proxyds.selection.sampling import proxy_size


def _arrays(n: int = 20):
    labels = np.arange(n) % 2
    index = SplitIndex([f"k{i}" for i in range(n)], labels.copy(), np.zeros(n, np.int32), ["s0"], ["ok"] * n)
    index.skip(3, "undecodable input")
    index.labels[3] = -1
    ref = ReferenceScores(preds=np.zeros((2, 10), np.int64), usable=np.arange(5) * 2, accuracy=[0.5, 0.6],
                          cases=np.array([1, 2, 3, 4, 1], np.int8), importance=np.array([2.0, 1, 6, 1, 2]),
                          neighbors=None)
    neighbor = np.arange(n) % 5
    neighbor[3] = -1
    train = TrainScores(preds=np.zeros((2, n), np.int64), neighbor=neighbor, distance=np.zeros(n, np.float32),
                        true_prob=np.full((2, n), 0.5, np.float32), entropy=np.tile(np.linspace(0.1, 2, n), (2, 1)))
    return index, ref, train


@pytest.mark.parametrize("selector", ["probe", "entropy", "random"])
def test_sample_stage_accounts_for_every_row(tmp_path, selector):
    index, ref, train = _arrays()
    cfg = BuildConfig(dataset="hf:x", out=tmp_path / "o", ratio=0.5, selector=selector, label_reduction="off")
    m = sample(cfg, index, ("a", "b"), ref, train).manifest
    assert len(m["index"]) == 20 and m["selected"].sum() == proxy_size(0.5, 19)
    assert not m["selected"][3] and m["keep_prob"][3] == 0 and m["case"][3] == 0 and m["neighbor"][3] == -1
    assert m["keep_prob"].sum() == pytest.approx(1.0)
    ok = np.flatnonzero(index.ok)
    np.testing.assert_array_equal(m["case"][ok], ref.cases[train.neighbor[ok]])
    np.testing.assert_array_equal(m["neighbor"][ok], ref.usable[train.neighbor[ok]])  # reference positions
    if selector == "probe":
        np.testing.assert_array_equal(m["importance"][ok], ref.importance[train.neighbor[ok]])


def test_sample_stage_is_deterministic_and_follows_the_seed(tmp_path):
    index, ref, train = _arrays()
    cfg = lambda seed: BuildConfig(dataset="hf:x", out=tmp_path / "o", ratio=0.3, seed=seed,  # noqa: E731
                                   label_reduction="off")
    picks = [sample(cfg(s), index, ("a", "b"), ref, train).manifest["selected"] for s in (0, 0, 1)]
    np.testing.assert_array_equal(picks[0], picks[1])
    assert not np.array_equal(picks[0], picks[2])
