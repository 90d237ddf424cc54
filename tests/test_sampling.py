"""Sampling: exact proxy size with half-up rounding, exactly k distinct picks, determinism
per seed, independence from key order, uniform hashes, inclusion that follows the weights,
zero weights last, keep probabilities that sum to 1."""

from __future__ import annotations

import math
import types

import numpy as np
import pytest
from scipy import stats

from proxyds.selection import sampling
from proxyds.selection.sampling import draw, hash_uniforms, keep_probabilities, proxy_size, weighted_topk


def _keys(n: int, prefix: str = "ex") -> list[str]:
    return [f"{prefix}-{i:06d}" for i in range(n)]


# --- proxy_size ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ratio,n,k",
    [
        (0.1, 40000, 4000),
        (0.25, 10, 3),  # 2.5 -> 3
        (0.5, 3, 2),  # 1.5 -> 2
        (0.05, 10, 1),  # 0.5 -> 1
        (0.24, 10, 2),  # 2.4 -> 2
        (0.26, 10, 3),  # 2.6 -> 3
        (0.999, 10, 10),
        (0.5, 1, 1),
        (0.1, 1_281_167, 128_117),
    ],
)
def test_proxy_size(ratio, n, k):
    got = proxy_size(ratio, n)
    assert got == k
    assert isinstance(got, int)


def test_proxy_size_is_within_half_of_ratio_times_n():
    for ratio in (0.01, 0.1, 0.3, 0.77):
        for n in (100, 101, 999, 12345):
            k = proxy_size(ratio, n)
            assert 1 <= k <= n
            assert abs(k - ratio * n) <= 0.5 + 1e-9


@pytest.mark.parametrize("ratio,n,k", [(0.29, 50, 15), (0.009, 1500, 14)])
def test_proxy_size_decimal_halves_round_up(ratio, n, k):
    assert proxy_size(ratio, n) == k


@pytest.mark.parametrize("ratio,shown", [(0.0, "0.0"), (-0.1, "-0.1"), (1.0, "1.0"), (1.5, "1.5"),
                                         (math.nan, "nan"), (math.inf, "inf")])
def test_proxy_size_bad_ratio(ratio, shown):
    with pytest.raises(ValueError, match="ratio") as excinfo:
        proxy_size(ratio, 100)
    assert f"(got {shown})" in str(excinfo.value)


@pytest.mark.parametrize("n", [0, -5])
def test_proxy_size_empty_split(n):
    with pytest.raises(ValueError, match=rf"n={n}"):
        proxy_size(0.1, n)


def test_proxy_size_rounds_to_zero():
    with pytest.raises(ValueError, match=r"ratio 0\.01 of 10 examples rounds to 0"):
        proxy_size(0.01, 10)


# --- hash_uniforms -------------------------------------------------------------------------


def test_hash_uniforms_open_interval_and_uniform():
    u = hash_uniforms(_keys(5000), seed=0)
    assert u.dtype == np.float64 and u.shape == (5000,)
    assert (u > 0).all() and (u < 1).all()
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    assert len(np.unique(u)) == len(u)


def test_hash_uniforms_deterministic_and_per_key():
    keys = _keys(100)
    u = hash_uniforms(keys, seed=7)
    np.testing.assert_array_equal(u, hash_uniforms(keys, seed=7))
    # a key's value does not depend on the other keys or on their order
    np.testing.assert_array_equal(hash_uniforms(keys[::-1], seed=7), u[::-1])
    np.testing.assert_array_equal(hash_uniforms(keys[40:45], seed=7), u[40:45])


def test_hash_uniforms_seed_changes_values():
    keys = _keys(1000)
    u0, u1 = hash_uniforms(keys, seed=0), hash_uniforms(keys, seed=1)
    assert (u0 != u1).mean() > 0.99
    assert abs(stats.pearsonr(u0, u1).statistic) < 0.15  # independent streams


def test_hash_uniforms_empty():
    assert hash_uniforms([], seed=0).shape == (0,)


def _fixed_digest(byte: int):
    digest = bytes([byte]) * 8
    return types.SimpleNamespace(blake2b=lambda data, digest_size: types.SimpleNamespace(digest=lambda: digest))


def test_hash_uniforms_smallest_hash_is_positive(monkeypatch):
    monkeypatch.setattr(sampling, "hashlib", _fixed_digest(0x00))
    u = hash_uniforms(["a"], seed=0)
    assert 0.0 < u[0] < 1e-15


def test_hash_uniforms_largest_hash_is_below_one(monkeypatch):
    monkeypatch.setattr(sampling, "hashlib", _fixed_digest(0xFF))
    u = hash_uniforms(["a"], seed=0)
    assert u[0] < 1.0


# --- weighted_topk / draw ------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 5, 17, 100, 1000])
def test_draw_exactly_k(n):
    rng = np.random.default_rng(n)
    weights = rng.random(n) * (rng.random(n) < 0.7)  # about 30% zero weights
    keys = _keys(n)
    for k in sorted({1, max(1, n // 3), max(1, n // 2), n - 1 or 1, n}):
        mask = draw(keys, weights, k, seed=3)
        assert mask.dtype == bool and mask.shape == (n,)
        assert mask.sum() == k
        idx = weighted_topk(weights, k, hash_uniforms(keys, 3))
        assert len(idx) == len(np.unique(idx)) == k
        assert (np.diff(idx) > 0).all()  # ascending, distinct
        np.testing.assert_array_equal(np.flatnonzero(mask), idx)


def test_draw_all_returns_everything():
    n = 50
    assert draw(_keys(n), np.arange(n, dtype=float), n, seed=0).all()


def test_draw_deterministic():
    keys, w = _keys(200), np.random.default_rng(0).random(200)
    np.testing.assert_array_equal(draw(keys, w, 20, seed=11), draw(keys, w, 20, seed=11))


def test_draw_seed_changes_selection():
    keys, w = _keys(200), np.random.default_rng(0).random(200)
    masks = [draw(keys, w, 20, seed=s) for s in range(5)]
    assert len({m.tobytes() for m in masks}) == 5


def test_draw_does_not_depend_on_key_order():
    rng = np.random.default_rng(1)
    keys, w = _keys(300), rng.random(300) * (rng.random(300) < 0.8)
    selected = {k for k, m in zip(keys, draw(keys, w, 40, seed=5)) if m}
    for _ in range(3):
        perm = rng.permutation(300)
        pkeys = [keys[i] for i in perm]
        mask = draw(pkeys, w[perm], 40, seed=5)
        assert {k for k, m in zip(pkeys, mask) if m} == selected


def test_scaling_weights_does_not_change_selection():
    keys, w = _keys(300), np.random.default_rng(2).random(300)
    base = draw(keys, w, 30, seed=0)
    for c in (0.25, 2.0, 8.0):  # powers of two: log(u) / (c w) is an exact rescaling
        np.testing.assert_array_equal(draw(keys, c * w, 30, seed=0), base)


def test_equal_weights_take_the_largest_uniforms():
    u = np.random.default_rng(3).random(100)
    np.testing.assert_array_equal(weighted_topk(np.ones(100), 10, u), np.sort(np.argsort(-u)[:10]))


def test_inclusion_follows_weights():
    n, k, seeds = 20, 5, 400
    w = np.arange(1, n + 1, dtype=float)
    keys = _keys(n)
    counts = np.zeros(n)
    for seed in range(seeds):
        counts += draw(keys, w, k, seed=seed)
    assert counts.sum() == k * seeds
    freq = counts / seeds
    assert stats.spearmanr(freq, w).statistic > 0.9
    assert freq[-1] > freq[0]
    assert freq[-5:].mean() > 2 * freq[:5].mean()


def test_single_positive_weight_is_always_taken():
    w = np.zeros(30)
    w[17] = 1e-9
    for seed in range(20):
        mask = draw(_keys(30), w, 1, seed=seed)
        assert np.flatnonzero(mask).tolist() == [17]


@pytest.mark.parametrize("k", [3, 8, 10, 15, 20])
def test_zero_weights_taken_only_after_all_positive(k):
    rng = np.random.default_rng(k)
    w = np.zeros(20)
    positive = rng.choice(20, size=10, replace=False)
    w[positive] = rng.random(10) + 0.01
    keys = _keys(20)
    for seed in range(20):
        mask = draw(keys, w, k, seed=seed)
        assert mask.sum() == k
        if k <= 10:
            assert not mask[w == 0].any()
        else:
            assert mask[positive].all()


def test_zero_weights_chosen_by_uniform():
    # among zero weights the tie is broken by u, largest first
    u = np.random.default_rng(4).random(50)
    np.testing.assert_array_equal(weighted_topk(np.zeros(50), 7, u), np.sort(np.argsort(-u)[:7]))


@pytest.mark.filterwarnings("ignore:overflow encountered in divide:RuntimeWarning")
def test_tiny_positive_weight_beats_zero_weight():
    assert weighted_topk(np.array([0.0, 1e-310]), 1, np.array([0.9, 0.1])).tolist() == [1]


@pytest.mark.parametrize(
    "weights,k,uniforms,match",
    [
        (np.ones(5), 0, None, r"k must be in 1\.\.5 \(got 0\)"),
        (np.ones(5), 6, None, r"k must be in 1\.\.5 \(got 6\)"),
        (np.array([1.0, -1.0, 1.0]), 1, None, ">= 0"),
        (np.array([1.0, np.nan, 1.0]), 1, None, "finite"),
        (np.array([1.0, np.inf, 1.0]), 1, None, "finite"),
        (np.ones(5), 1, np.full(4, 0.5), "equal length"),
        (np.ones((2, 2)), 1, np.full((2, 2), 0.5), "1-D"),
    ],
)
def test_weighted_topk_rejects(weights, k, uniforms, match):
    if uniforms is None:
        uniforms = np.full(weights.shape, 0.5)
    with pytest.raises(ValueError, match=match):
        weighted_topk(weights, k, uniforms)


# --- keep_probabilities --------------------------------------------------------------------


def test_keep_probabilities_sum_to_one_and_are_proportional():
    rng = np.random.default_rng(5)
    for n in (1, 7, 1000, 100_000):
        imp = rng.random(n) * 10
        p = keep_probabilities(imp)
        assert p.dtype == np.float64 and p.shape == (n,)
        assert abs(p.sum() - 1.0) <= 1e-12
        np.testing.assert_allclose(p * imp.sum(), imp, rtol=1e-12)


def test_keep_probabilities_of_case_weights():
    p = keep_probabilities(np.array([2.0, 1.0, 6.0, 1.0]))
    np.testing.assert_allclose(p, [0.2, 0.1, 0.6, 0.1], rtol=1e-15)


@pytest.mark.parametrize("imp", [np.zeros(5), np.array([]), np.array([1.0, np.nan]), np.array([1.0, np.inf])])
def test_keep_probabilities_rejects_non_positive_or_non_finite_total(imp):
    with pytest.raises(ValueError, match="sum to a positive finite number"):
        keep_probabilities(imp)


def test_keep_probabilities_rejects_negative_importance():
    with pytest.raises(ValueError):
        keep_probabilities(np.array([-1.0, 2.0]))


# --- label reduction -----------------------------------------------------------------------
from proxyds.selection.sampling import class_scores, keep_classes  # noqa: E402


def test_class_scores_are_mean_importance_and_empty_classes_rank_last():
    labels = np.array([0, 0, 1, 1, 1, 3])
    imp = np.array([1.0, 3.0, 6.0, 6.0, 0.0, 5.0])
    scores = class_scores(labels, imp, 5)
    assert scores[:2].tolist() == [2.0, 4.0] and scores[3] == 5.0
    assert np.isneginf(scores[2]) and np.isneginf(scores[4])


def test_keep_classes_keeps_highest_until_target():
    labels = np.repeat(np.arange(5), 10)
    imp = np.repeat([1.0, 5.0, 3.0, 2.0, 4.0], 10)
    assert np.flatnonzero(keep_classes(labels, imp, 5, target=20)).tolist() == [1, 4]
    assert np.flatnonzero(keep_classes(labels, imp, 5, target=21)).tolist() == [1, 2, 4]
    assert np.flatnonzero(keep_classes(labels, imp, 5, num_keep=1)).tolist() == [1]
    with pytest.raises(ValueError, match="cannot keep 6 classes"):
        keep_classes(labels, imp, 5, num_keep=6)
    with pytest.raises(ValueError, match="exactly one"):
        keep_classes(labels, imp, 5)
