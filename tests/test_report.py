"""The evaluate report at a glance: the headline figure first, heatmap titles that agree with Table 1,
scatter panels on shared equal axes with y = x, paired-difference intervals inside the range a
difference can take, and selectors with flat weights flagged. Built from hand-made accuracy tables
(no training), so each test takes about a second."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from proxyds.harness import metrics as M
from proxyds.harness import report
from proxyds.harness.figures import (_ms, headline_figure, pairwise_figure, pairwise_title, plot_headline,
                                     scatter_figure)
from proxyds.harness.settings import EvaluateConfig
from proxyds.spaces import get_space

SELECTORS = ("random", "entropy", "class-balanced")
RATIOS = (0.1, 0.25)


@pytest.fixture(scope="module")
def results():
    """assemble() on 6 configs, 3 full seeds and 2 proxy seeds whose rankings differ seed to seed;
    ``entropy``'s weights were flat on every seed."""
    cfg = EvaluateConfig.from_benchmark("tiny", "unused", selectors=SELECTORS, ratios=RATIOS, full_seeds=3,
                                        proxy_seeds=2)
    space = get_space("cnn1d")
    configs = list(space.configs[:6])
    rng = np.random.default_rng(7)
    full_acc = np.linspace(0.3, 0.8, 6) + rng.normal(0, 0.07, size=(3, 6))
    proxy_acc = {(sel, r): np.clip(np.linspace(0.2, 0.6, 6) + rng.normal(0, 0.12, size=(2, 6)), 0, 1)
                 for sel in SELECTORS for r in RATIOS}
    notes = {"random": {"flat_weight_seeds": [0, 1]}, "entropy": {"flat_weight_seeds": [0, 1]},
             "class-balanced": {"flat_weight_seeds": []}}
    description = {"train": "t", "reference_A": "a", "evaluation_B": "b", "sizes": {"train": 400},
                   "generator": {"seed": 0}}
    timing = {"full_runs": 18, "proxy_runs": 72, "trained_runs": 0, "full_train_seconds": 1.0,
              "proxy_train_seconds": 1.0, "wall_seconds": {"full": 1.0, "proxies": 1.0}}
    zero_cost = {"synflow": rng.normal(size=6).tolist(), "naswot": np.ones(6).tolist()}  # naswot: constant
    return report.assemble(cfg, description, space, configs, 10, full_acc, proxy_acc, notes, timing, zero_cost)


@pytest.fixture(scope="module")
def written(results, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    report.write(results, out)
    return out


def test_the_headline_figure_comes_first_in_report_md(written):
    text = (written / "report.md").read_text()
    assert (written / "headline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    first_image = text.index("![")
    assert text[first_image:].startswith("![Spearman against the full-data ranking by proxy size](headline.png)")
    assert first_image < text.index("## Data and settings") < text.index("Table 1")


def test_the_headline_figure_shows_selectors_ceiling_and_baselines(results):
    fig = headline_figure(results)
    ax = fig.axes[0]
    lines = {c.get_label(): c.lines[0] for c in ax.containers}  # one errorbar per selector
    assert set(lines) == {"random", "entropy (flat weights: = random)", "class-balanced"}
    rnd = lines["random"]
    assert rnd.get_color() == "black" and all(rnd.get_linewidth() > ln.get_linewidth()
                                               for name, ln in lines.items() if name != "random")
    np.testing.assert_allclose(rnd.get_ydata(), [results["proxies"]["random"][str(r)]["metrics"]["spearman"]["mean"]
                                                 for r in RATIOS])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["10%", "25%"]
    pairs = results["noise_ceiling"]["spearman_values"]
    assert len(pairs) == 3 and min(pairs) < max(pairs)
    assert results["noise_ceiling"]["spearman"] == pytest.approx(np.mean(pairs))
    band = [p for p in ax.patches if p.get_gid() == "noise-ceiling"]
    assert len(band) == 1 and band[0].get_y() == pytest.approx(min(pairs))
    assert band[0].get_y() + band[0].get_height() == pytest.approx(max(pairs))
    dashed = {round(ln.get_ydata()[0], 3) for ln in ax.get_lines() if ln.get_linestyle() == "--"}
    expected = {round(results["baselines"][k]["spearman"], 3) for k in ("macs", "params", "synflow")}
    assert dashed == expected  # naswot is constant here: no value, named in the caption instead
    texts = " ".join(t.get_text() for t in ax.texts)
    assert "rank by MACs" in texts and "rank by params" in texts and "SynFlow" in texts
    caption = " ".join(fig.get_supxlabel().split())
    assert "NASWOT: no value" in caption and "from the lowest to the highest of the 3 pairs" in caption


def test_figures_are_byte_identical_and_carry_no_version(results, tmp_path):
    plot_headline(results, tmp_path / "a.png")
    plot_headline(results, tmp_path / "b.png")
    data = (tmp_path / "a.png").read_bytes()
    assert data == (tmp_path / "b.png").read_bytes() and b"Software" not in data and b"matplotlib" not in data


def test_heatmap_title_agrees_with_table_1(results, written):
    """The table's cell is the mean over seeds of each seed's Spearman; so is the heatmap's title
    (the seed-mean accuracies' Spearman, a different number here, is not shown)."""
    full = np.array([c["full_mean"] for c in results["configs"]])
    entry = results["proxies"]["entropy"]["0.1"]
    acc = np.array(entry["accuracy"])
    table = _ms(entry["metrics"]["spearman"])
    of_means = f"{M.spearman(full, acc.mean(0)):.3f}"
    assert of_means not in table  # the two quantities differ on this data
    assert f"| {table} |" in (written / "report.md").read_text()
    fig = pairwise_figure(full, acc, pairwise_title("entropy", "0.1", entry))
    title = fig.axes[0].get_title()
    assert table in title and _ms(entry["metrics"]["pair_agreement"]) in title and "as in Table 1" in title
    assert of_means not in title
    cells = np.asarray(fig.axes[0].images[0].get_array())
    upper = cells[np.triu_indices(len(full), 1)]
    assert upper.mean() == pytest.approx(entry["metrics"]["pair_agreement"]["mean"])  # the cells average to it
    with pytest.raises(ValueError, match="proxy must be"):
        pairwise_figure(full, acc[:, :3], "t")


def test_scatter_panels_share_equal_axes_with_the_diagonal(results):
    fig = scatter_figure(results)
    axes = fig.axes
    assert len(axes) == len(SELECTORS) * len(RATIOS)
    limits = {(ax.get_xlim(), ax.get_ylim()) for ax in axes}
    assert len(limits) == 1
    (xlim, ylim), = limits
    assert xlim == ylim
    full = 100 * np.array([c["full_mean"] for c in results["configs"]])
    assert xlim[0] < full.min() and full.max() < xlim[1]
    for ax in axes:
        assert any(np.allclose(ln.get_xdata(), ln.get_ydata()) and np.allclose(ln.get_xdata(), xlim)
                   for ln in ax.get_lines())


def test_paired_differences_stay_in_the_range_a_difference_can_take(results, written):
    raw_outside = False
    for sel in ("entropy", "class-balanced"):
        for ratio in map(str, RATIOS):
            entry, base = results["proxies"][sel][ratio], results["proxies"]["random"][ratio]
            for metric, (low, high) in (("spearman", (-2, 2)), ("kendall", (-2, 2)), ("regret", (-1, 1))):
                lo, hi = entry["vs_random"][metric]["ci"]
                assert low <= lo <= hi <= high
                values = entry["metrics"][metric]["values"], base["metrics"][metric]["values"]
                raw = M.paired_difference(*values)["ci"]
                raw_outside |= raw[0] < low or raw[1] > high
    assert raw_outside  # two seeds: the unclipped t-interval leaves the range on this data
    assert "clipped to the range a difference can take" in (written / "report.md").read_text()


def test_flat_weight_selectors_are_flagged(results, written):
    notes = results["selector_notes"]
    assert notes["entropy"]["flat_weights"] is True and "plain random subsets" in notes["entropy"]["flat_weights_note"]
    assert notes["class-balanced"]["flat_weights"] is False and "flat_weights_note" not in notes["class-balanced"]
    assert notes["random"]["flat_weights"] is True and "flat_weights_note" not in notes["random"]  # by design
    saved = json.loads((written / "results.json").read_text())["selector_notes"]
    assert saved["entropy"]["flat_weights"] is True
    text = (written / "report.md").read_text()
    assert "**Flat weights:** `entropy` gave every usable train example the same weight on every proxy seed" in text
    assert "**Flat weights:** `class-balanced`" not in text and "**Flat weights:** `random`" not in text


def test_in_memory_proxies_record_flat_weights(tmp_path):
    """class-balanced on perfectly balanced classes gives every example the same weight."""
    from proxyds.harness.evaluate import EvalData, _proxy_jobs
    from proxyds.selection.selectors import Scores

    n, classes = 60, 3
    labels = np.arange(n) % classes
    g = torch.Generator().manual_seed(0)
    data = EvalData(torch.randn(n, 1, 40, generator=g), torch.as_tensor(labels), torch.randn(6, 1, 40),
                    torch.arange(6) % classes, torch.randn(6, 1, 40), torch.arange(6) % classes, classes)
    rng = np.random.default_rng(0)
    scores = Scores(labels, rng.uniform(size=(2, n)), rng.uniform(size=(2, n)), rng.uniform(size=n), classes)
    cfg = EvaluateConfig.from_benchmark("tiny", tmp_path, selectors=("class-balanced", "entropy"), ratios=(0.5,),
                                        proxy_seeds=2)
    _, _, notes = _proxy_jobs(cfg, data, scores, {}, ["a", "b", "c"])
    assert notes["class-balanced"]["flat_weight_seeds"] == [0, 1] and notes["entropy"]["flat_weight_seeds"] == []
