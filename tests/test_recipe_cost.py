"""What a proxy run costs beside the full run, as evaluate reports it (issue 15: judge every
recipe at its cost)."""

from __future__ import annotations

import pytest

from proxyds.harness.settings import EvaluateConfig
from proxyds.recipe import SAME


def test_recommended_recipe_keeps_most_of_the_full_runs_steps(tmp_path):
    """mnist1d-cnn: 8,000 train examples, 10 epochs of batch 128 = 630 steps. The recommended
    recipe (batch x ratio, at least 16) gives a 10% proxy 500 steps (0.79 of them) at 0.1 of the FLOPs."""
    cfg = EvaluateConfig.from_benchmark("mnist1d-cnn", tmp_path)
    cost = cfg.proxy_cost(0.1, 8000)
    assert (cost["examples"], cost["steps"], cost["full_steps"]) == (800, 500, 630)
    assert cost["steps_fraction"] == pytest.approx(500 / 630) and cost["flops_fraction"] == pytest.approx(0.1)


def test_the_papers_recipe_cuts_steps_with_the_data(tmp_path):
    cfg = EvaluateConfig.from_benchmark("mnist1d-cnn", tmp_path, proxy_batch_power=SAME.batch_power)
    cost = cfg.proxy_cost(0.1, 8000)
    assert cost["steps"] == 70 and cost["steps_fraction"] == pytest.approx(70 / 630)  # ceil(800 / 128) x 10
    with pytest.raises(ValueError, match="num_train must be a positive int"):
        cfg.proxy_cost(0.1, 0)
