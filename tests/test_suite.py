"""The selector benchmark suite: seeded spaces drawn from the 1-D grids, the halves' paired
statistics, the rules that pick the recipe and the default selector, the phases' orchestration
(members run through a stand-in evaluation) and the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from proxyds.cli import main
from proxyds.harness import suite as S
from proxyds.harness.settings import EvaluateConfig
from proxyds.recipe import RECOMMENDED, SAME
from proxyds.spaces import count_macs, get_space
from proxyds.spaces.cnn1d import CNN1D_CONFIGS
from proxyds.spaces.mlp1d import MLP1D_CONFIGS
from proxyds.spaces.sampled import GRIDS, sample_space


@pytest.mark.parametrize("kind", ["cnn1d", "mlp1d"])
def test_sampled_spaces_are_seeded_new_and_capped(kind):
    a, b, other = sample_space(kind, 3), sample_space(kind, 3), sample_space(kind, 4)
    names = [c.name for c in a.configs]
    assert names == [c.name for c in b.configs] and len(set(names)) == len(names) == 8
    assert names != [c.name for c in other.configs]
    frozen = {tuple(v) for v in (CNN1D_CONFIGS if kind == "cnn1d" else MLP1D_CONFIGS)}
    fields = tuple(GRIDS[kind]["levels"])
    for c in a.configs:
        assert tuple(c.params[f] for f in fields) not in frozen
        assert count_macs(a.build(c, 10), (1, 40)) <= GRIDS[kind]["max_macs"]
    assert [c.name for c in get_space(f"{kind}-s3").configs] == names
    assert sample_space(kind, 3, n=5).name == f"{kind}-s3-n5"


@pytest.mark.parametrize("args, match", [(("vit", 1), "kind"), (("cnn1d", -1), "seed"), (("mlp1d", 1, 1), "n must")])
def test_sampled_space_rejects_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        sample_space(*args)


def _results(per_selector: dict, ceiling=0.9, cost=0.1):
    """A member's results.json as evaluate writes it, with the given Spearman per seed."""
    proxies = {sel: {r: {"metrics": {m: {"values": list(v), "mean": float(np.mean(v))}
                                     for m in ("spearman", "top_half_spearman")}}
                     for r, v in by_ratio.items()} for sel, by_ratio in per_selector.items()}
    return {"proxies": proxies, "noise_ceiling": {"spearman": ceiling},
            "baselines": {"macs": {"spearman": 0.5}, "synflow": {"spearman": 0.2}},
            "settings": {"proxy_cost": {r: {"steps_fraction": cost, "flops_fraction": cost}
                                        for r in next(iter(per_selector.values()))}}}


SUITE = dict(members=(S.Member("a", "d1", "cnn1d-s1", "tuning"), S.Member("b", "d1", "mlp1d-s1", "tuning"),
                      S.Member("c", "d3", "cnn1d-s3", "held-out")),
             selectors=("random", "class-balanced", "entropy"), recipes={"cheap": SAME, "dear": RECOMMENDED}, max_cost=0.2)


def test_half_summary_pairs_by_seed_and_averages_over_members():
    results = {"a": _results({"random": {"0.1": [0.5, 0.6, 0.7]}, "class-balanced": {"0.1": [0.5, 0.6, 0.7]},
                              "entropy": {"0.1": [0.7, 0.8, 0.9]}}),
               "b": _results({"random": {"0.1": [0.5, 0.5, 0.5]}, "class-balanced": {"0.1": [0.4, 0.5, 0.6]},
                              "entropy": {"0.1": [0.5, 0.6, 0.5]}}, ceiling=0.7)}
    half = S.half_summary(SUITE, results, "tuning")
    assert half["members"] == ["a", "b"] and half["noise_ceiling"] == pytest.approx(0.8)
    ent = half["selectors"]["entropy"]["0.1"]
    # per seed, averaged over members: (0.2 + 0.0) / 2, (0.2 + 0.1) / 2, (0.2 + 0.0) / 2
    assert ent["vs_random"]["mean"] == pytest.approx(np.mean([0.1, 0.15, 0.1]))
    assert ent["vs_random"]["sd"] == pytest.approx(np.std([0.1, 0.15, 0.1], ddof=1))
    assert ent["vs_random"]["beats_by_2sd"] and ent["vs_random"]["wins"] == 4 and ent["vs_random"]["pairs"] == 6
    cb = half["selectors"]["class-balanced"]["0.1"]["vs_random"]
    assert cb["mean"] == pytest.approx(0.0) and not cb["beats_by_2sd"]
    assert not half["selectors"]["random"]["0.1"]["vs_random"]["beats_by_2sd"]
    assert half["baselines"] == {"macs": 0.5, "synflow": 0.2}
    assert S.half_summary(SUITE, results, "held-out") == {"members": []}


def _half(diffs: dict) -> dict:
    """A half summary with the given (mean, sd) per selector at two ratios."""
    rows = {s: {r: {"vs_random": {"mean": m, "sd": sd, "beats_by_2sd": s != "random" and m > 2 * sd}}
                for r in ("0.05", "0.1")} for s, (m, sd) in diffs.items()}
    return {"selectors": rows}


def test_choose_selector_rules():
    win = S.choose_selector(SUITE, _half({"random": (0, 0), "class-balanced": (0.01, 0.1), "entropy": (0.1, 0.02)}))
    assert win["chosen"] == "entropy" and "2 sd" in win["why"]
    cb = S.choose_selector(SUITE, _half({"random": (0, 0), "class-balanced": (0.01, 0.1), "entropy": (0.05, 0.1)}))
    assert cb["chosen"] == "class-balanced"
    rnd = S.choose_selector(SUITE, _half({"random": (0, 0), "class-balanced": (-0.01, 0.1), "entropy": (0.05, 0.1)}))
    assert rnd["chosen"] == "random" and "no selector" in rnd["why"]


def test_choose_recipe_takes_the_best_cheap_one():
    by = {"cheap": {"a": _results({"random": {"0.1": [0.6, 0.6]}}), "b": _results({"random": {"0.1": [0.8, 0.8]}})},
          "dear": {"a": _results({"random": {"0.1": [0.9, 0.9]}}, cost=0.8),
                   "b": _results({"random": {"0.1": [0.9, 0.9]}}, cost=0.8)}}
    choice = S.choose_recipe(SUITE, by)
    assert choice["chosen"] == "cheap" and choice["recipes"]["cheap"]["mean_spearman"] == pytest.approx(0.7)
    assert not choice["recipes"]["dear"]["cheap"]
    with pytest.raises(ValueError, match="has not been run on the tuning members"):
        S.choose_recipe(SUITE, {"cheap": by["cheap"], "dear": {"a": by["dear"]["a"]}})


def _stand_in(calls: list):
    """An evaluate that records its config and writes a results.json shaped like the real one."""
    def evaluate(cfg):
        calls.append(cfg)
        seeds = cfg.proxy_seeds
        base = 0.3 + 0.1 * (cfg.proxy_recipe.batch_power > 0)  # the dearer recipe ranks better
        res = _results({s: {str(r): [base + 0.01 * i for i in range(seeds)] for r in cfg.ratios}
                        for s in cfg.selectors})
        res["settings"]["proxy_cost"] = {str(r): cfg.proxy_cost(r, 720) for r in cfg.ratios}
        res["discriminative"] = {"accuracy_spread_points": 10.0, "macs_spearman": 0.1}
        res["timing"] = {}
        Path(cfg.out).mkdir(parents=True, exist_ok=True)
        (Path(cfg.out) / "results.json").write_text(json.dumps(res))
        return res
    return evaluate


def test_run_suite_phases(tmp_path, monkeypatch):
    calls: list = []
    monkeypatch.setattr("proxyds.harness.evaluate.evaluate", _stand_in(calls))
    monkeypatch.setattr("proxyds.presets.materialize_mnist1d", lambda args: tmp_path / "data")
    tiny, out = S.SUITES["tiny"], tmp_path / "out"
    with pytest.raises(ValueError, match="with --phase recipes"):
        S.run_suite("tiny", out, cache=tmp_path / "c", phase="selectors")
    assert S.run_suite("tiny", out, cache=tmp_path / "c", phase="recipes", members=["t1-cnn1d"]) is None
    assert len(calls) == len(tiny["recipes"]) and all(c.selectors == ("random",) for c in calls)
    assert all(c.proxy_seeds == tiny["recipe_seeds"] and c.space == "cnn1d-s1" for c in calls)
    assert {dict(c.data.build)["probe_epochs"] for c in calls} == {10}
    calls.clear()
    result = S.run_suite("tiny", out, cache=tmp_path / "c")
    assert result["recipe_choice"]["chosen"] == "same (paper)"  # the other is dearer than max_cost in steps
    selectors_runs = [c for c in calls if c.selectors == tiny["selectors"]]
    assert {c.space for c in selectors_runs} == {"cnn1d-s1", "mlp1d-s3"}
    assert all(c.proxy_recipe == tiny["recipes"]["same (paper)"] for c in selectors_runs)
    assert result["default"]["chosen"] == "random"  # every selector ties with random in the stand-in
    text = (out / "suite.md").read_text()
    assert "Held-out half: t2-mlp1d" in text and "**(chosen)**" in text and (out / "frontier.png").stat().st_size
    assert json.loads((out / "suite.json").read_text())["default"]["chosen"] == "random"
    with pytest.raises(ValueError, match="unknown member 'zz'"):
        S.run_suite("tiny", out, members=["zz"])
    with pytest.raises(ValueError, match="unknown suite 'nope'"):
        S.run_suite("nope", out)


def test_suite_command_line_rejects_settings_it_fixes(tmp_path, capsys):
    assert main(["evaluate", "--suite", "tiny", "--space", "cnn1d", "--out", str(tmp_path)]) == 1
    assert "--suite runs its own fixed settings; drop --space" in capsys.readouterr().err


def test_a_ranking_needs_three_configs(tmp_path):
    with pytest.raises(ValueError, match="at least 3 configs"):
        EvaluateConfig.from_benchmark("tiny", tmp_path, configs=("w8-d1-k5-pool-nobn-plain-relu-p0-max",
                                                                  "w8-d3-k3-stem-bn-res-relu-p0-flat"))


@pytest.mark.slow
def test_tiny_suite_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PROXYDS_CACHE", str(tmp_path / "cache"))
    assert main(["evaluate", "--suite", "tiny", "--out", str(tmp_path / "out"), "-q"]) == 0
    assert "default selector:" in capsys.readouterr().out
    result = json.loads((tmp_path / "out" / "suite.json").read_text())
    assert set(result["halves"]["tuning"]["selectors"]) == set(S.SUITES["tiny"]["selectors"])
    assert result["members"]["t2-mlp1d"]["half"] == "held-out"
