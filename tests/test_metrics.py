"""Ranking metrics on hand-made accuracy tables."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from proxyds.harness import metrics as M

FULL = np.array([0.90, 0.80, 0.70, 0.60, 0.50])


@pytest.mark.parametrize("fn", [M.pearson, M.spearman, M.kendall])
def test_identical_ranking_is_one_and_reversed_is_minus_one(fn):
    assert fn(FULL, FULL) == pytest.approx(1.0)
    assert fn(FULL, FULL[::-1]) == pytest.approx(-1.0)


def test_rank_correlations_ignore_scale_pearson_does_not():
    proxy = np.array([0.5, 0.2, 0.19, 0.18, 0.1])  # same order, very different spacing
    assert M.spearman(FULL, proxy) == pytest.approx(1.0)
    assert M.kendall(FULL, proxy) == pytest.approx(1.0)
    assert M.pearson(FULL, proxy) < 0.95


def test_one_swap_by_hand():
    proxy = np.array([0.80, 0.90, 0.70, 0.60, 0.50])  # the top two swapped
    # Spearman = 1 - 6 * sum d^2 / (n (n^2 - 1)) = 1 - 6 * 2 / 120
    assert M.spearman(FULL, proxy) == pytest.approx(0.9)
    # Kendall: 9 concordant, 1 discordant of 10 pairs
    assert M.kendall(FULL, proxy) == pytest.approx(0.8)
    assert not M.top1_kept(FULL, proxy)
    assert M.regret(FULL, proxy) == pytest.approx(0.10)
    assert M.topk_overlap(FULL, proxy, 2) == 1.0
    assert M.topk_overlap(FULL, proxy, 1) == 0.0
    agree = M.pairwise_agreement(FULL, proxy)
    assert agree.shape == (5, 5) and agree.diagonal().all()
    assert (~agree).sum() == 2 and not agree[0, 1] and not agree[1, 0]


def test_regret_and_topk_by_hand():
    full = np.array([0.60, 0.95, 0.70, 0.90, 0.80])
    proxy = np.array([0.30, 0.40, 0.20, 0.50, 0.45])  # proxy picks config 3 (0.90), best is config 1 (0.95)
    assert M.regret(full, proxy) == pytest.approx(0.05)
    assert M.top1_kept(full, proxy) is False
    # full top-3 = {1, 3, 4}; proxy top-3 = {3, 4, 1}
    assert M.topk_overlap(full, proxy, 3) == 1.0
    # full top-2 = {1, 3}; proxy top-2 = {3, 4}
    assert M.topk_overlap(full, proxy, 2) == 0.5
    assert M.regret(full, full) == 0.0 and M.top1_kept(full, full)


def test_top_half_spearman_looks_only_at_the_best_half():
    full = np.array([0.9, 0.8, 0.7, 0.3, 0.2, 0.1])
    proxy = np.array([0.9, 0.8, 0.7, 0.1, 0.2, 0.3])  # bottom half reversed, top half intact
    assert list(M.top_half(full)) == [0, 1, 2]
    assert M.top_half_spearman(full, proxy) == pytest.approx(1.0)
    assert M.spearman(full, proxy) < 1.0


def test_noise_ceiling_from_made_up_seeds():
    seeds = np.array([[0.9, 0.8, 0.7, 0.6],
                      [0.9, 0.8, 0.7, 0.6],
                      [0.8, 0.9, 0.7, 0.6]])  # seed 2 swaps the top pair: Spearman 0.8 with each other seed
    assert M.noise_ceiling(seeds) == pytest.approx((1.0 + 0.8 + 0.8) / 3)
    assert math.isnan(M.noise_ceiling(seeds[:1]))


def test_paired_difference_t_interval():
    a, b = [0.8, 0.7, 0.9], [0.7, 0.7, 0.7]
    d = M.paired_difference(a, b)
    diffs = np.array([0.1, 0.0, 0.2])
    half = stats.t.ppf(0.975, 2) * diffs.std(ddof=1) / math.sqrt(3)
    assert d["mean"] == pytest.approx(0.1) and d["n"] == 3
    assert d["ci"] == pytest.approx([0.1 - half, 0.1 + half])
    one = M.paired_difference([0.5], [0.4])
    assert one["mean"] == pytest.approx(0.1) and math.isnan(one["ci"][0])


def test_constant_proxy_correlates_with_nothing():
    assert math.isnan(M.spearman(FULL, np.ones(5)))


def test_ranking_metrics_and_summary():
    m = M.ranking_metrics(FULL, FULL)
    assert m["spearman"] == pytest.approx(1.0) and m["top1_kept"] == 1.0
    assert m["regret"] == 0.0 and m["pair_agreement"] == 1.0
    s = M.summarize([0.5, 0.7])
    assert s["mean"] == pytest.approx(0.6) and s["std"] == pytest.approx(np.std([0.5, 0.7], ddof=1))


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="equal length"):
        M.spearman([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="k must be"):
        M.topk_overlap(FULL, FULL, 6)


def test_paired_difference_interval_is_clipped_to_the_possible_range():
    """Two seeds of Spearman differences -0.5 and 0: the t-interval (±3.2) leaves [-2, 2]."""
    raw = M.paired_difference([0.5, 1.0], [1.0, 1.0])
    assert raw["ci"][0] < -2 and raw["ci"][1] > 2
    d = M.paired_difference([0.5, 1.0], [1.0, 1.0], bounds=M.DIFFERENCE_BOUNDS["spearman"])
    assert d["ci"] == [-2.0, 2.0] and d["mean"] == raw["mean"] and d["std"] == raw["std"]
    r = M.paired_difference([0.0, 0.3], [0.0, 0.0], bounds=M.DIFFERENCE_BOUNDS["regret"])
    assert r["ci"] == [-1.0, 1.0]
    with pytest.raises(ValueError, match="bounds"):
        M.paired_difference([0.5, 1.0], [1.0, 1.0], bounds=(2.0, -2.0))
