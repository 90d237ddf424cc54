"""ProxyRecipe: how a proxy's epochs, batch size and learning rate follow from the full data's."""

from __future__ import annotations

import math

import pytest

from proxyds.harness.evaluate import EvaluateConfig
from proxyds.recipe import RECOMMENDED, SAME, ProxyRecipe


def test_same_recipe_changes_nothing():
    assert SAME.apply(10, 128, 2e-3, 0.05) == (10, 128, 2e-3)


def test_sqrt_batch_rule_by_hand():
    # batch 128 * sqrt(0.05) = 28.6 -> 29; lr 2e-3 * sqrt(29 / 128)
    epochs, batch, lr = ProxyRecipe(epoch_scale=2, batch_power=0.5).apply(10, 128, 2e-3, 0.05)
    assert (epochs, batch) == (20, 29)
    assert lr == pytest.approx(2e-3 * math.sqrt(29 / 128))


def test_batch_never_below_min_nor_above_full():
    assert ProxyRecipe(batch_power=1.0, min_batch=16).apply(10, 128, 1e-3, 0.01)[1] == 16
    assert ProxyRecipe(batch_power=1.0, min_batch=16).apply(10, 8, 1e-3, 0.5)[1] == 8


@pytest.mark.parametrize("kwargs, match", [
    ({"epoch_scale": 0}, "epoch_scale"), ({"epoch_scale": float("nan")}, "epoch_scale"),
    ({"batch_power": 1.5}, "batch_power"), ({"lr_batch_power": "x"}, "lr_batch_power"),
    ({"min_batch": 1}, "min_batch"),
])
def test_bad_recipe_is_refused_by_name(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ProxyRecipe(**kwargs)


def test_bad_ratio_is_refused():
    with pytest.raises(ValueError, match="ratio"):
        SAME.apply(10, 128, 1e-3, 0.0)


def test_describe_names_the_numbers():
    text = ProxyRecipe(epoch_scale=2, batch_power=0.5).describe(10, 128, 2e-3, 0.05)
    assert "20 epochs" in text and "batch 29" in text


def test_evaluate_trains_proxies_with_the_proxy_recipe(tmp_path):
    cfg = EvaluateConfig.from_benchmark("tiny", tmp_path, proxy_epoch_scale=3.0, proxy_batch_power=0.5)
    assert cfg.proxy_recipe.epoch_scale == 3.0 and cfg.proxy_recipe.batch_power == 0.5
    r = cfg.proxy_training(0.25)
    assert (r.epochs, r.batch_size) == (6, 32)
    assert EvaluateConfig.from_benchmark("tiny", tmp_path).proxy_recipe == RECOMMENDED
