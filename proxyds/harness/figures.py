"""The evaluation report's figures: the headline (Spearman against the full-data ranking by proxy
size, with the noise ceiling and the training-free baselines), the paper's Figure 2 pairwise
heatmaps, and proxy-vs-full scatter plots.

Each ``*_figure`` function builds a :class:`matplotlib.figure.Figure` from the results dict
(:func:`proxyds.harness.report.assemble`) without pyplot's global state, so tests can inspect
it; ``plot_*`` saves one. PNGs are written without matplotlib's version in their metadata, so
the same results give the same bytes.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np

from proxyds.harness import metrics as M

__all__ = ["headline_figure", "plot_headline", "pairwise_figure", "plot_pairwise", "scatter_figure",
           "plot_scatter", "HEADLINE"]

#: The headline figure's file name in an evaluate output.
HEADLINE = "headline.png"
_BASELINE_LABELS = {"macs": "rank by MACs", "params": "rank by params", "synflow": "SynFlow", "naswot": "NASWOT"}
_DARK, _YELLOW = "#2b1a4a", "#f5d000"


def _pct(ratio: float) -> str:
    return f"{ratio * 100:g}%"


def _ms(summary: dict, scale: float = 1.0, digits: int = 3) -> str:
    if not _finite(summary["mean"]):
        return "n/a"
    m, s = summary["mean"] * scale, (summary["std"] or 0.0) * scale
    return f"{m:.{digits}f} ± {s:.{digits}f}"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _new_figure(figsize: tuple[float, float], dpi: int = 100):
    """A figure outside pyplot (no global state), drawn with matplotlib's default style."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> None:
    """PNG without the 'Software' (matplotlib version) entry: the same figure gives the same bytes."""
    fig.savefig(path, format="png", metadata={"Software": None})


def _finite(x) -> bool:
    return x is not None and math.isfinite(x)


def flat_selectors(results: dict) -> set[str]:
    """Selectors other than ``random`` whose weights came out flat (their proxies are random subsets)."""
    return {sel for sel, note in results.get("selector_notes", {}).items()
            if sel != "random" and note.get("flat_weights")}


def headline_figure(results: dict):
    """Spearman against the full-data ranking (mean ± std over proxy seeds) by proxy size, one line
    per selector (``random`` thick and black); the noise ceiling as a line and a band; the
    training-free baselines as labelled dashed lines."""
    import matplotlib.style

    st = results["settings"]
    sels, ratios = st["selectors"], [float(r) for r in st["ratios"]]
    flat = flat_selectors(results)
    with matplotlib.style.context("default"):
        fig = _new_figure((8.6, 5.6))
        ax = fig.add_subplot()
        ax.set_ylim(_headline_bottom(results), 1.05)
        ceiling_text = _draw_ceiling(ax, results["noise_ceiling"])
        missing = _draw_baselines(ax, results["baselines"])
        colors = iter(c for i, c in enumerate(matplotlib.colormaps["tab10"].colors * 3)
                      if i % 10 not in (2, 7))  # green is the ceiling's, grey the baselines'
        for j, sel in enumerate(sels):
            xs = [r * math.exp((j - (len(sels) - 1) / 2) * 0.025) for r in ratios]  # dodged so bars stay apart
            rho = [results["proxies"][sel][str(r)]["metrics"]["spearman"] for r in st["ratios"]]
            mean = np.array([np.nan if not _finite(m["mean"]) else m["mean"] for m in rho])
            std = np.array([0.0 if not _finite(m["std"]) else m["std"] for m in rho])
            base = dict(color="black", linewidth=3.0, markersize=7, zorder=5, marker="s") if sel == "random" else \
                dict(color=next(colors), linewidth=1.5, markersize=5, zorder=4, marker="o")
            ax.errorbar(xs, mean, yerr=std, capsize=3, elinewidth=base["linewidth"] * 0.7,
                        label=f"{sel} (flat weights: = random)" if sel in flat else sel, **base)
        ax.set_xscale("log")
        ax.set_xticks(ratios, [_pct(r) for r in ratios])
        ax.minorticks_off()
        ax.set_xlim(min(ratios) / 1.35, max(ratios) * 1.35)
        ax.axhline(0.0, color="#bbbbbb", linewidth=0.8, zorder=0)
        ax.grid(alpha=0.25)
        ax.set_xlabel("proxy size (% of the train split)")
        ax.set_ylabel("Spearman vs the full-data ranking")
        ax.legend(loc="best", fontsize=8, framealpha=0.9)
        ax.set_title(f"Does a proxy rank the {results['space']} configs as the full data does? "
                     f"({results['benchmark']}, {len(results['configs'])} configs)", fontsize=10)
        caption = (f"Points: mean over {st['proxy_seeds']} proxy seeds of the Spearman correlation between the "
                   f"configs' proxy accuracies and their full-data accuracies (mean of {st['full_seeds']} seeds), "
                   f"on evaluation split B; bars: ± std over proxy seeds. {ceiling_text} Dashed: rankings that "
                   f"train nothing (by MACs, params, and training-free scores){missing}.")
        fig.supxlabel("\n".join(textwrap.wrap(caption, 125)), fontsize=7.5, ha="left", x=0.01)
    return fig


def _headline_bottom(results: dict) -> float:
    """The y-axis starts a little below the lowest value drawn (and at 0 or below), never below -1.05."""
    values = [0.0, results["noise_ceiling"].get("spearman"),
              *results["noise_ceiling"].get("spearman_values", []),
              *(b.get("spearman") for b in results["baselines"].values()),
              *(e["metrics"]["spearman"]["mean"] - (e["metrics"]["spearman"]["std"] or 0.0)
                for by_ratio in results["proxies"].values() for e in by_ratio.values()
                if _finite(e["metrics"]["spearman"]["mean"]))]
    return max(-1.05, min(v for v in values if _finite(v)) - 0.1)


def _draw_ceiling(ax, ceiling: dict) -> str:
    """The noise ceiling: its mean as a green line, min..max over full-seed pairs shaded; returns the caption's
    sentence about it."""
    mean = ceiling.get("spearman")
    values = [v for v in ceiling.get("spearman_values", []) if _finite(v)]
    if not _finite(mean):
        return "No noise ceiling: it needs at least 2 full-data seeds."
    pairs = ceiling.get("seed_pairs", len(values))
    lo, hi = (min(values), max(values)) if values else (mean, mean)
    ax.axhline(mean, color="#2ca02c", linewidth=1.2, zorder=1,
               label=f"noise ceiling {mean:.2f}" + (f" (band {lo:.2f} to {hi:.2f})" if hi > lo else ""))
    if hi > lo:
        ax.axhspan(lo, hi, color="#2ca02c", alpha=0.15, linewidth=0, zorder=0, gid="noise-ceiling")
    band = (f"the shaded band runs from the lowest to the highest of the {pairs} pairs" if hi > lo else
            f"no band: {pairs} seed pair{'s' if pairs != 1 else ''}, no spread to show")
    return (f"Green: the noise ceiling, the mean Spearman between full-data seeds (how well the full data "
            f"agrees with itself when retrained); {band}.")


def _draw_baselines(ax, baselines: dict) -> str:
    """Each training-free ranking's Spearman as a dashed line labelled at the left (equal values share a
    line and a label; close ones' labels are stacked apart); returns a note naming those without a value.
    Call it after the y-limits are set."""
    from matplotlib.transforms import blended_transform_factory

    at: dict[float, list[str]] = {}
    missing = []
    for key, b in baselines.items():
        name = _BASELINE_LABELS.get(key, key)
        if _finite(b.get("spearman")):
            at.setdefault(round(float(b["spearman"]), 3), []).append(name)
        else:
            missing.append(name)
    grey = ["#444444", "#7f7f7f"]
    to_axes_x = blended_transform_factory(ax.transAxes, ax.transData)
    low, high = ax.get_ylim()
    step, last = 0.045 * (high - low), -math.inf
    for i, (rho, names) in enumerate(sorted(at.items())):
        color = grey[i % len(grey)]
        ax.axhline(rho, color=color, linestyle="--", linewidth=1.2, zorder=2)
        last = max(rho + 0.01 * (high - low), last + step)
        ax.text(0.005, last, f"{', '.join(names)}: {rho:.2f}", transform=to_axes_x, fontsize=7.5,
                color=color, ha="left", va="bottom", zorder=6)
    return f" ({', '.join(missing)}: no value, a constant score ranks nothing)" if missing else ""


def plot_headline(results: dict, path: Path) -> None:
    """:func:`headline_figure` saved as a PNG."""
    _save(headline_figure(results), path)


def pairwise_figure(full: np.ndarray, proxy: np.ndarray, title: str):
    """Paper Figure 2: config x config, coloured by the fraction of proxy seeds (rows of ``proxy``,
    seeds x configs; a 1-D array is one seed) that order the pair as the full data does: yellow
    all of them, dark none. Configs are sorted by full accuracy, best first (index 1); the green
    box marks the best config's row and column. The mean over the cells above the diagonal is the
    mean over seeds of each seed's share of pairs ordered as on the full data (Table 1's row)."""
    import matplotlib.style
    from matplotlib.colors import LinearSegmentedColormap
    from matplotlib.patches import Rectangle

    full = np.asarray(full, dtype=np.float64)
    runs = np.atleast_2d(np.asarray(proxy, dtype=np.float64))
    if full.ndim != 1 or runs.ndim != 2 or runs.shape[1] != len(full):
        raise ValueError(f"proxy must be (seeds, configs) or (configs,) with {len(full)} configs like full "
                         f"(got full {full.shape}, proxy {np.shape(proxy)})")
    order = np.argsort(-full, kind="stable")
    agree = np.mean([M.pairwise_agreement(full[order], run[order]) for run in runs], axis=0)
    n = len(full)
    with matplotlib.style.context("default"):
        fig = _new_figure((6.4, 6.4), dpi=110)
        ax = fig.add_subplot()
        image = ax.imshow(agree, cmap=LinearSegmentedColormap.from_list("agree", [_DARK, _YELLOW]), vmin=0, vmax=1,
                          interpolation="nearest")
        ticks = np.arange(n)
        ax.set_xticks(ticks, [str(i + 1) for i in ticks], fontsize=7)
        ax.set_yticks(ticks, [str(i + 1) for i in ticks], fontsize=7)
        for xy, w, h in (((-0.5, -0.5), n, 1), ((-0.5, -0.5), 1, n)):
            ax.add_patch(Rectangle(xy, w, h, fill=False, edgecolor="#00c040", linewidth=2))
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("config rank on full data (1 = best)")
        ax.set_ylabel("config rank on full data (1 = best)")
        bar = fig.colorbar(image, ax=ax, shrink=0.6, location="bottom")
        bar.set_label(f"share of the {len(runs)} proxy seed{'s' if len(runs) != 1 else ''} that order the pair as "
                      f"the full data (yellow: all, dark: none)", fontsize=8)
    return fig


def plot_pairwise(full: np.ndarray, proxy: np.ndarray, path: Path, title: str) -> None:
    """:func:`pairwise_figure` saved as a PNG."""
    _save(pairwise_figure(full, proxy, title), path)


def pairwise_title(sel: str, ratio: str, entry: dict) -> str:
    """A heatmap's title: the same numbers as Table 1's column (mean ± std over proxy seeds)."""
    seeds, m = len(entry["accuracy"]), entry["metrics"]
    return (f"{sel}, {_pct(float(ratio))} proxy vs full data ({seeds} proxy seeds)\npairs ordered as on full data "
            f"{_ms(m['pair_agreement'])}, Spearman {_ms(m['spearman'])}\n(mean ± std over proxy seeds, as in "
            f"Table 1)")


def scatter_figure(results: dict):
    """Proxy accuracy (mean ± std over seeds) against full accuracy: one panel per selector (columns)
    and ratio (rows), every panel on the same axes, x and y over the same range, with the diagonal
    y = x; the best full-data config in red."""
    import matplotlib.style

    st = results["settings"]
    sels, ratios = st["selectors"], [str(r) for r in st["ratios"]]
    full = 100 * np.array([c["full_mean"] for c in results["configs"]])
    best = int(np.argmax(full))
    acc = {(sel, r): 100 * np.array(results["proxies"][sel][r]["accuracy"]) for r in ratios for sel in sels}
    ends = [full] + [a.mean(0) - a.std(0) for a in acc.values()] + [a.mean(0) + a.std(0) for a in acc.values()]
    lo, hi = float(min(e.min() for e in ends)), float(max(e.max() for e in ends))
    pad = max(hi - lo, 1.0) * 0.05
    lo, hi = lo - pad, hi + pad
    with matplotlib.style.context("default"):
        fig = _new_figure((3.4 * len(sels), 3.3 * len(ratios)))
        axes = fig.subplots(len(ratios), len(sels), squeeze=False, sharex=True, sharey=True)
        for i, ratio in enumerate(ratios):
            for j, sel in enumerate(sels):
                ax, a = axes[i][j], acc[sel, ratio]
                ax.plot([lo, hi], [lo, hi], linestyle=":", color="#888888", linewidth=1, zorder=1)
                ax.errorbar(full, a.mean(0), yerr=a.std(0), fmt="o", ms=4, color="#1f5fa8", ecolor="#9bb8dc",
                            elinewidth=1, zorder=2)
                ax.plot(full[best], a.mean(0)[best], "o", ms=7, color="#d62728", zorder=3)
                rho = results["proxies"][sel][ratio]["metrics"]["spearman"]
                ax.set_title(f"{sel} {_pct(float(ratio))}: Spearman {_ms(rho, digits=2)}", fontsize=9)
                ax.set_xlim(lo, hi)
                ax.set_ylim(lo, hi)
                ax.set_aspect("equal", adjustable="box")
                ax.grid(alpha=0.3)
                if i == len(ratios) - 1:
                    ax.set_xlabel("full-data accuracy (%)", fontsize=8)
                if j == 0:
                    ax.set_ylabel("proxy accuracy (%)", fontsize=8)
                ax.tick_params(labelsize=7)
        fig.suptitle("Proxy vs full-data accuracy on split B (dotted: y = x; red: best config on full data)",
                     fontsize=10)
    return fig


def plot_scatter(results: dict, path: Path) -> None:
    """:func:`scatter_figure` saved as a PNG."""
    _save(scatter_figure(results), path)
