"""proxyds evaluate end to end on the tiny setting: report files, every selector x ratio,
cached reruns, and the config's validation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from proxyds.cli import main
from proxyds.harness.evaluate import BENCHMARKS, DataSpec, EvaluateConfig, TrainRecipe, train_model




def test_evaluate_tiny_smoke(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PROXYDS_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "report"
    assert main(["evaluate", "--tiny", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "noise ceiling" in printed and "rank by MACs" in printed

    results = json.loads((out / "results.json").read_text())
    tiny = BENCHMARKS["tiny"]
    selectors = ["probe", "random", "class-balanced", "entropy"]
    assert set(results["proxies"]) == set(selectors)
    for sel in selectors:
        assert set(results["proxies"][sel]) == {str(r) for r in tiny["ratios"]}
        for entry in results["proxies"][sel].values():
            assert np.array(entry["accuracy"]).shape == (tiny["proxy_seeds"], len(tiny["configs"]))
            assert {"pearson", "spearman", "kendall", "top1_kept", "top3_overlap", "regret"} <= set(entry["metrics"])
            assert ("vs_random" in entry) == (sel != "random")
    assert [c["name"] for c in results["configs"]] == list(tiny["configs"])
    assert all(len(c["full"]) == tiny["full_seeds"] for c in results["configs"])
    assert {"macs", "params", "synflow", "naswot"} == set(results["baselines"]) and "spearman" in results["noise_ceiling"]
    assert all(-1 <= b["spearman"] <= 1 for b in results["baselines"].values())
    assert "SynFlow (training-free)" in (out / "report.md").read_text() and "naswot" in printed
    assert set(results["settings"]["proxy_cost"]) == {str(r) for r in tiny["ratios"]}
    assert isinstance(results["discriminative"]["is_discriminative"], bool)
    assert "issue" not in (out / "report.md").read_text() + (out / "results.json").read_text()  # no internal jargon
    assert "optimiser steps against the full run's" in (out / "report.md").read_text() and "of its FLOPs" in printed
    assert "every reported accuracy" in results["data"]["evaluation_B"]

    report = (out / "report.md").read_text()
    assert "Table 1" in report and "noise ceiling" in report and "rank by MACs" in report
    assert "reference split A" in report and "evaluation split B" in report
    for png in ["headline.png", "scatter.png"] + [f"pairwise-{s}-{r * 100:g}pct.png" for s in selectors for r in tiny["ratios"]]:
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
        assert png in report



def test_runs_are_cached_and_reused(tmp_path, monkeypatch):
    from proxyds.harness import evaluate as ev
    from proxyds.spaces import get_space

    g = torch.Generator().manual_seed(0)
    data = ev.EvalData(torch.randn(30, 1, 40, generator=g), torch.arange(30) % 3, torch.randn(10, 1, 40, generator=g),
                       torch.arange(10) % 3, torch.randn(12, 1, 40, generator=g), torch.arange(12) % 3, 3)
    space = get_space("cnn1d")
    harness = ev.Harness(data, space, TrainRecipe(epochs=1, batch_size=16), tmp_path)
    name = space.configs[1].name
    jobs = [ev._Job(name, 0, None, keep_model=True), ev._Job(name, 1000, np.arange(8))]
    first = harness.run_many(jobs)
    assert harness.trained_runs == 2 and all(0 <= r["accuracy"] <= 1 for r in first)

    def no_training(*args, **kwargs):
        raise AssertionError("a cached run was retrained")

    monkeypatch.setattr(ev, "train_model", no_training)
    assert harness.run_many(jobs) == first and harness.trained_runs == 2
    assert harness.trained(name).num_features > 0  # the probe's weights come from the cache
    other = ev.Harness(data, space, TrainRecipe(epochs=2, batch_size=16), tmp_path)  # another recipe: not reused
    with pytest.raises(AssertionError, match="retrained"):
        other.run_many(jobs[:1])


def test_train_model_is_seeded():
    from proxyds.spaces import get_space

    space = get_space("cnn1d")
    x, y = torch.randn(40, 1, 40, generator=torch.Generator().manual_seed(0)), torch.arange(40) % 3
    states = []
    for _ in range(2):
        torch.manual_seed(3)
        model = train_model(space.build(space.configs[0], 3), x, y, TrainRecipe(epochs=1, batch_size=16), seed=3)
        states.append(model.state_dict())
    for k in states[0]:
        assert torch.equal(states[0][k], states[1][k]), k


def test_config_validation(tmp_path):
    with pytest.raises(ValueError, match="unknown selector 'nope'"):
        EvaluateConfig.from_benchmark("tiny", tmp_path, selectors=("nope",))
    with pytest.raises(ValueError, match="ratio must be in the open interval"):
        EvaluateConfig.from_benchmark("tiny", tmp_path, ratios=(1.5,))
    with pytest.raises(ValueError, match="unknown benchmark"):
        EvaluateConfig.from_benchmark("nope", tmp_path)
    with pytest.raises(ValueError, match="overlap"):
        DataSpec({}, train=10, reference=(0, 100), evaluation=(50, 150))
    with pytest.raises(ValueError, match="epochs"):
        TrainRecipe(epochs=0)
    cfg = EvaluateConfig.from_benchmark("tiny", tmp_path, epochs=3, train=300, generator={"iid_noise_scale": 0.1})
    assert cfg.recipe.epochs == 3 and cfg.data.train == 300
    assert cfg.data.generator["iid_noise_scale"] == 0.1 and cfg.data.generator["num_samples"] == 800


def test_cli_help_and_bad_arguments(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    text = capsys.readouterr().out
    for option in ("--out", "--tiny", "--selectors", "--ratios", "--full-seeds", "--proxy-seeds", "--epochs",
                   "--workers", "--cache", "--reference-rows", "--evaluation-rows", "--mnist1d"):
        assert option in text
    assert main(["evaluate", "--tiny", "--out", str(tmp_path / "o"), "--selectors", "nope"]) == 1
    assert "unknown selector" in capsys.readouterr().err


def test_harness_trains_through_the_builds_trainer(monkeypatch):
    """One trainer: the harness's full-data and proxy runs go through pipeline.probes.train_probe."""
    from proxyds.harness import data
    from proxyds.pipeline.probes import train_probe
    from proxyds.spaces import get_space

    calls = []

    def recording(*args, **kwargs):
        calls.append(kwargs)
        return train_probe(*args, **kwargs)

    monkeypatch.setattr(data, "train_probe", recording)
    space = get_space("cnn1d")
    x, y = torch.randn(40, 1, 40), torch.arange(40) % 3
    train_model(space.build(space.configs[0], 3), x, y, TrainRecipe(epochs=1, batch_size=16), seed=0)
    assert len(calls) == 1 and calls[0]["optimizer"] == "adam" and calls[0]["steps_per_epoch"] == 3


def test_a_user_selector_module_attr_drives_evaluate(tmp_path):
    """`proxyds evaluate --selectors plugins.tiny_selector:favour_class_zero`: accepted by the config,
    and weighed on the same Scores the build computes (from the harness's probes)."""
    from proxyds.harness import evaluate as ev
    from proxyds.selection.selectors import select_weights
    from proxyds.spaces import get_space

    spec = "plugins.tiny_selector:favour_class_zero"
    cfg = EvaluateConfig.from_benchmark("tiny", tmp_path / "r", selectors=(spec, "random"))
    assert cfg.selectors == (spec, "random")
    g = torch.Generator().manual_seed(0)
    data = ev.EvalData(torch.randn(30, 1, 40, generator=g), torch.arange(30) % 3, torch.randn(12, 1, 40, generator=g),
                       torch.arange(12) % 3, torch.randn(12, 1, 40, generator=g), torch.arange(12) % 3, 3)
    harness = ev.Harness(data, get_space("cnn1d"), TrainRecipe(epochs=1, batch_size=16), tmp_path)
    scores, notes = ev.probe_scores(harness, data, harness.space, pca_components=4)
    assert scores.true_prob.shape == (2, 30) and len(notes["probes"]) == 2
    np.testing.assert_array_equal(select_weights(spec, scores), np.where(np.arange(30) % 3 == 0, 3.0, 1.0))
