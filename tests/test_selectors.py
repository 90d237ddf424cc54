"""Selectors: every registered one gives finite, non-negative weights of the right length on a
tiny problem; class-balanced and entropy weights follow their rules by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from proxyds.evaluate import predict
from proxyds.selectors import (
    SelectionContext,
    entropy_bin_weights,
    get_selector,
    list_selectors,
    register_selector,
    softmax_entropy,
)
from proxyds.spaces import get_space


pytestmark = pytest.mark.usefixtures("one_thread")


def _context() -> SelectionContext:
    """60 train / 40 reference random signals, 3 classes; probes are untrained (seeded) models."""
    g = torch.Generator().manual_seed(0)
    space = get_space("cnn1d")
    y = torch.tensor([0] * 30 + [1] * 20 + [2] * 10)

    def trained(config):
        torch.manual_seed(0)
        return space.build(config, 3).eval()

    return SelectionContext(torch.randn(60, 1, 40, generator=g), y, torch.randn(40, 1, 40, generator=g),
                            torch.arange(40) % 3, 3, space, trained=trained, predict=lambda m, x: predict(m, x))


def test_builtins_are_registered():
    assert {"probe", "random", "class-balanced", "entropy"} <= set(list_selectors())
    assert list_selectors("class-*") == ["class-balanced"]


@pytest.mark.parametrize("name", list_selectors())
def test_every_selector_gives_valid_weights(name):
    ctx = _context()
    w = np.asarray(get_selector(name)(ctx))
    assert w.shape == (60,)
    assert np.isfinite(w).all() and (w >= 0).all() and w.sum() > 0


def test_class_balanced_gives_each_class_equal_total_weight():
    ctx = _context()
    w = get_selector("class-balanced")(ctx)
    y = ctx.y_train.numpy()
    totals = [w[y == c].sum() for c in range(3)]
    assert totals == pytest.approx([1.0, 1.0, 1.0])
    for c in range(3):
        assert np.ptp(w[y == c]) == 0  # uniform within a class


def test_random_is_uniform():
    assert np.ptp(get_selector("random")(_context())) == 0


def test_entropy_bins_by_hand():
    # log-entropies 0, 0.1, 0.2 (bin 0, 3 examples), 1.2 (bin 2, 1 example) with width 0.5
    ent = np.exp([0.0, 0.1, 0.2, 1.2])
    w = entropy_bin_weights(ent, bin_width=0.5)
    # bin 0: max_count 3 - 3 + 1 = 1, split over 3; bin 2: 3 - 1 + 1 = 3, on one example
    assert w == pytest.approx([1 / 3, 1 / 3, 1 / 3, 3.0])
    # one bin only: everyone gets 1 / n
    assert entropy_bin_weights(np.ones(4), 0.5) == pytest.approx([0.25] * 4)


def test_entropy_handles_zero_entropy_and_rejects_bad_input():
    w = entropy_bin_weights(np.array([0.0, 0.0, 1.0]), bin_width=1.0)
    assert np.isfinite(w).all() and w[2] > w[0]
    with pytest.raises(ValueError, match="bin_width"):
        entropy_bin_weights(np.ones(3), 0)
    with pytest.raises(ValueError, match="entropy"):
        entropy_bin_weights(np.array([np.nan]))


def test_softmax_entropy():
    ent = softmax_entropy(np.array([[0.0, 0.0], [100.0, 0.0]]))
    assert ent == pytest.approx([np.log(2), 0.0], abs=1e-9)


def test_probe_selector_records_its_cases():
    ctx = _context()
    get_selector("probe")(ctx)
    note = ctx.notes["probe"]
    assert sum(note["cases_on_A"].values()) == 40
    lower, upper = ctx.space.probes(2, 3)
    assert note["probes"] == {"lower": lower.name, "upper": upper.name}


def test_unknown_and_duplicate_names():
    with pytest.raises(ValueError, match="unknown selector 'nope'; known: .*class-balanced.*random"):
        get_selector("nope")
    with pytest.raises(ValueError, match="already registered"):
        register_selector("random")(lambda ctx: None)
