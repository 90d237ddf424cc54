"""ManifestSampler after label reduction: a class the build dropped is never drawn (issue 12, item 2)."""

from __future__ import annotations

import math

import numpy as np
import pyarrow.parquet as pq

from proxyds import ManifestSampler
from proxyds.pipeline.build import build
from proxyds.selection.sampling import proxy_size

from helpers import tiny_config


def _assert_kept_only(manifest, kept_index: set[int], *, epochs: int = 4) -> None:
    """Every rank of every world size 1..3, every epoch, with and without replacement, draws kept rows only."""
    for replacement in (False, True):
        for world in (1, 2, 3):
            ranks = [ManifestSampler(manifest, num_replicas=world, rank=r, seed=1, replacement=replacement)
                     for r in range(world)]
            for epoch in range(epochs):
                drawn = set()
                for s in ranks:
                    s.set_epoch(epoch)
                    drawn |= set(s)
                outside = drawn - kept_index
                assert not outside, (f"world {world}, epoch {epoch}, replacement={replacement}: "
                                     f"{len(outside)} drawn examples of dropped classes")


def test_no_draw_falls_outside_the_kept_classes(tiny_mnist1d, tmp_path):
    out = tmp_path / "proxy"
    result = build(tiny_config(f"hf:{tiny_mnist1d}", out, label_reduction="3"))
    assert len(result.summary["label_reduction"]["dropped_classes"]) == 7
    table = pq.read_table(out / "manifest.parquet")
    m = table.to_pandas()
    dropped = m["proxy_label"] == -1
    assert dropped.mean() > 0.5  # most examples belong to dropped classes: a leak would show

    # The manifest: keep probability 0 on dropped classes, importance / sum over the kept rows elsewhere.
    assert (m.loc[dropped, "keep_prob"] == 0).all()
    assert math.isclose(math.fsum(m["keep_prob"]), 1.0, abs_tol=1e-9)
    kept_imp = m.loc[~dropped, "importance"]
    assert np.allclose(m.loc[~dropped, "keep_prob"], kept_imp / kept_imp.sum(), rtol=1e-12, atol=0)
    assert (m["importance"] > 0).any() and (m.loc[dropped, "importance"] > 0).any()  # importance column unchanged

    kept_index = set(m.loc[~dropped, "index"].tolist())
    _assert_kept_only(out, kept_index)

    # A manifest written before the fix (keep_prob over every usable row): the sampler still skips dropped classes.
    old = {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}
    old["keep_prob"] = old["importance"] / old["importance"].sum()
    assert old["keep_prob"][dropped.to_numpy()].sum() > 0.5
    _assert_kept_only(old, kept_index)
    assert len(ManifestSampler(old, ratio=0.5)) == proxy_size(0.5, len(kept_index))  # a ratio of the drawable rows
