"""Selectors: every registered one gives finite, non-negative weights of the right length on a
tiny problem; class-balanced and entropy weights follow their rules by hand."""

from __future__ import annotations

import numpy as np
import pytest

from proxyds.selection.selectors import (
    Scores,
    entropy_bin_weights,
    get_selector,
    list_selectors,
    register_selector,
    select_weights,
)


def _scores() -> Scores:
    """60 train examples of 3 classes, 2 probes with random (seeded) probabilities and entropies."""
    rng = np.random.default_rng(0)
    y = np.array([0] * 30 + [1] * 20 + [2] * 10)
    return Scores(y, rng.uniform(0.01, 1, (2, 60)), rng.uniform(0.0, 1.1, (2, 60)),
                  rng.choice([2.0, 1.0, 6.0, 1.0], 60), 3, seed=0)


def test_builtins_are_registered():
    assert {"probe", "random", "class-balanced", "entropy"} <= set(list_selectors())
    assert list_selectors("class-*") == ["class-balanced"]


@pytest.mark.parametrize("name", list_selectors())
def test_every_selector_gives_valid_weights(name):
    w = select_weights(name, _scores())
    assert w.shape == (60,)
    assert np.isfinite(w).all() and (w >= 0).all() and w.sum() > 0


def test_class_balanced_gives_each_class_equal_total_weight():
    scores = _scores()
    w = get_selector("class-balanced")(scores)
    y = scores.labels
    totals = [w[y == c].sum() for c in range(3)]
    assert totals == pytest.approx([1.0, 1.0, 1.0])
    for c in range(3):
        assert np.ptp(w[y == c]) == 0  # uniform within a class


def test_random_is_uniform():
    assert np.ptp(get_selector("random")(_scores())) == 0


def test_probe_is_the_inherited_case_importance():
    scores = _scores()
    np.testing.assert_array_equal(get_selector("probe")(scores), scores.importance)


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


def test_user_selector_by_module_attr():
    w = select_weights("plugins.tiny_selector:favour_class_zero", _scores())
    assert (w[:30] == 3).all() and (w[30:] == 1).all()
    with pytest.raises(ValueError, match="cannot import"):
        get_selector("plugins.tiny_selector:nothing_here")
    with pytest.raises(ValueError, match="not a function"):
        get_selector("plugins.tiny_selector:NOT_A_FUNCTION")


def test_bad_weights_are_refused_by_name():
    with pytest.raises(ValueError, match="'plugins.tiny_selector:all_zero' must return 60 finite weights"):
        select_weights("plugins.tiny_selector:all_zero", _scores())
    with pytest.raises(ValueError, match="must be \\(k probes, 60 examples\\)"):
        Scores(np.zeros(60, int), np.ones((2, 59)), np.ones((2, 60)), np.ones(60), 3)


def test_unknown_and_duplicate_names():
    with pytest.raises(ValueError, match="unknown selector 'nope'; known: .*class-balanced.*random"):
        get_selector("nope")
    with pytest.raises(ValueError, match="already registered"):
        register_selector("random")(lambda scores: None)
