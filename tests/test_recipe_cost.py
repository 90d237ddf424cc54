"""What a proxy run costs beside the full run, as evaluate reports it (issue 15: judge every
recipe at its cost)."""

from __future__ import annotations

import pytest

from proxyds.harness.settings import EvaluateConfig
from proxyds.recipe import BATCH_BY_RATIO, SAME


def test_recommended_recipe_is_five_times_cheaper_in_steps_and_flops(tmp_path):
    """mnist1d-cnn: 8,000 train examples, 10 epochs of batch 128 = 630 steps. The recommended
    recipe (batch x ratio^0.25) gives a 10% proxy batch 72: ceil(800 / 72) x 10 = 120 steps
    (0.19 of them) at 0.1 of the FLOPs, both at least 5x cheaper (issue 15)."""
    cfg = EvaluateConfig.from_benchmark("mnist1d-cnn", tmp_path)
    assert cfg.proxy_training(0.1).batch_size == 72
    cost = cfg.proxy_cost(0.1, 8000)
    assert (cost["examples"], cost["steps"], cost["full_steps"]) == (800, 120, 630)
    assert cost["steps_fraction"] == pytest.approx(120 / 630) and cost["flops_fraction"] == pytest.approx(0.1)
    assert cost["steps_fraction"] <= 0.2 and cost["flops_fraction"] <= 0.2


def test_the_v01_recipe_kept_most_of_the_full_runs_steps(tmp_path):
    cfg = EvaluateConfig.from_benchmark("mnist1d-cnn", tmp_path, proxy_batch_power=BATCH_BY_RATIO.batch_power)
    cost = cfg.proxy_cost(0.1, 8000)
    assert cost["steps"] == 500 and cost["steps_fraction"] == pytest.approx(500 / 630)  # batch 16


def test_the_papers_recipe_cuts_steps_with_the_data(tmp_path):
    cfg = EvaluateConfig.from_benchmark("mnist1d-cnn", tmp_path, proxy_batch_power=SAME.batch_power)
    cost = cfg.proxy_cost(0.1, 8000)
    assert cost["steps"] == 70 and cost["steps_fraction"] == pytest.approx(70 / 630)  # ceil(800 / 128) x 10
    with pytest.raises(ValueError, match="num_train must be a positive int"):
        cfg.proxy_cost(0.1, 0)
