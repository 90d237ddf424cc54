"""The loader reads only the kept rows of parquet shards (``HFSource.selected_examples``), and
gives exactly the batches it gave when it converted every row and filtered afterwards."""

from __future__ import annotations

import numpy as np
import pytest

from proxyds.pipeline.loader import SplitLoader
from proxyds.pipeline.scan import scan
from proxyds.sources.hf import HFSource

pytestmark = pytest.mark.usefixtures("hf_offline")


class _EveryRow:
    """The same source without ``selected_examples``: the loader's general path."""

    def __init__(self, source):
        self._source = source

    def __getattr__(self, name):
        if name == "selected_examples":
            raise AttributeError(name)
        return getattr(self._source, name)


@pytest.fixture(scope="module")
def sequences(tmp_path_factory):
    """300 train sequences of length 40 in 3 parquet shards of 100 (two row batches each)."""
    import datasets

    from proxyds.sinks import ParquetShardWriter

    root = tmp_path_factory.mktemp("seq")
    features = datasets.Features({"x": datasets.Sequence(datasets.Value("float32")),
                                  "label": datasets.ClassLabel(names=[str(c) for c in range(4)])})
    rng = np.random.default_rng(0)
    with ParquetShardWriter(root / "data", "train", features, rows_per_shard=100) as w:
        for i in range(300):
            w.write({"x": rng.normal(size=40).astype(np.float32).tolist(), "label": i % 4})
    return HFSource(str(root / "data" / "{split}-*.parquet"), "train")


def _epochs(source, index, usable, seed):
    loader = SplitLoader(source, index, "train", column="x", shape=(1, 40), on_error="raise", batch_size=16,
                         shuffle_seed=seed, buffer=64, usable=usable)
    return [(b.positions.tolist(), b.keys, b.x.numpy()) for e in range(2) for b in loader.epoch(e)]


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.9])
@pytest.mark.parametrize("seed", [None, 3])
def test_selected_rows_give_the_same_batches(sequences, fraction, seed, monkeypatch):
    monkeypatch.setattr(sequences, "read_batch", 32)  # several row batches per shard
    assert len(sequences.shards) == 3 and hasattr(sequences, "selected_examples")
    index = scan(sequences, "train", input_column="x")
    usable = np.random.default_rng(1).random(len(index)) < fraction
    fast, general = _epochs(sequences, index, usable, seed), _epochs(_EveryRow(sequences), index, usable, seed)
    assert len(fast) == len(general)
    for (pos_a, keys_a, x_a), (pos_b, keys_b, x_b) in zip(fast, general):
        assert pos_a == pos_b and keys_a == keys_b and np.array_equal(x_a, x_b)
    assert sorted(p for pos, _, _ in fast[: len(fast) // 2] for p in pos) == np.flatnonzero(usable).tolist()
