"""The selector suite's report: suite.json, suite.md (both halves, every selector, the default
chosen and why) and frontier.png (each candidate recipe's ranking quality against its cost)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from proxyds.harness.report import _finite, _pct, _plt

__all__ = ["write_suite", "plot_frontier", "suite_markdown"]


def write_suite(result: dict, out: Path) -> None:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plot_frontier(result["recipe_choice"], out / "frontier.png")
    (out / "suite.json").write_text(json.dumps(_finite(result), indent=1, default=float))
    (out / "suite.md").write_text(suite_markdown(result))


def plot_frontier(choice: dict, path: Path) -> None:
    """Mean Spearman of random proxies (tuning half) against the proxy run's optimiser steps as a
    fraction of the full run's, one marker per recipe and ratio; the chosen recipe is filled."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=110)
    markers = "osD^v<>"
    for i, (label, row) in enumerate(choice["recipes"].items()):
        ratios = sorted(row["spearman"], key=float)
        x = [row["cost"][r]["steps_fraction"] for r in ratios]
        y = [row["spearman"][r] for r in ratios]
        chosen = label == choice["chosen"]
        ax.plot(x, y, "-" + markers[i % len(markers)], ms=7, label=label + (" (chosen)" if chosen else ""),
                mfc=None if chosen else "white", lw=2 if chosen else 1)
        for r, xi, yi in zip(ratios, x, y):
            ax.annotate(f"{_pct(float(r))}, FLOPs {row['cost'][r]['flops_fraction']:.2f}", (xi, yi), fontsize=7,
                        xytext=(4, -10), textcoords="offset points")
    limit = choice.get("max_cost")
    if limit:
        ax.axvline(limit, color="grey", ls=":", lw=1)
        ax.annotate(f"cost limit: {limit:g} of the full run", (limit, 0.96), xycoords=("data", "axes fraction"),
                    fontsize=7, color="grey", xytext=(3, 0), textcoords="offset points")
    ax.set_xscale("log")
    ticks = [t for t in (0.05, 0.1, 0.2, 0.5, 1.0) if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    ax.set_xlabel("proxy run's optimiser steps / full run's (log scale)")
    ax.set_ylabel("Spearman vs full data (random proxies)")
    ax.set_title("Cost and ranking quality of the proxy recipes (tuning half)", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _f(x: float, digits: int = 3, sign: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def _half_table(half: dict, ratios: list[str]) -> list[str]:
    head = "| selector | " + " | ".join(f"Spearman {_pct(float(r))} | vs random {_pct(float(r))} (mean ± sd, "
                                         f"wins) | top-half {_pct(float(r))}" for r in ratios) + " |"
    lines = [head, "|" + "---|" * (1 + 3 * len(ratios))]
    for sel, row in half["selectors"].items():
        cells = []
        for r in ratios:
            v, d = row[r], row[r]["vs_random"]
            diff = "—" if sel == "random" else (f"{_f(d['mean'], sign=True)} ± {_f(d['sd'])}, {d['wins']}/{d['pairs']}"
                                                + (" **> 2 sd**" if d["beats_by_2sd"] else ""))
            cells += [_f(v["spearman"]), diff, _f(v["top_half_spearman"])]
        lines.append(f"| {sel} | " + " | ".join(cells) + " |")
    base = " | ".join(f"{k} {_f(v)}" for k, v in half["baselines"].items())
    lines += ["", f"Noise ceiling (full-data seeds against each other) {_f(half['noise_ceiling'])}; "
                  f"training-free rankings (Spearman, same configs): {base}."]
    return lines


def suite_markdown(result: dict) -> str:
    st, choice, default = result["settings"], result["recipe_choice"], result["default"]
    ratios = [str(r) for r in st["ratios"]]
    lines = [f"# Suite `{result['suite']}`: which proxy recipe and selector to ship", "",
             f"Every proxy below was made by the build's own stages with its defaults (probes, signal check, "
             f"label reduction, selection). Full-data runs: {st['full_seeds']} seeds of "
             f"{st['recipe']['epochs']} epochs, batch {st['recipe']['batch_size']}; proxies: {st['proxy_seeds']} "
             f"seeds per selector and ratio (the same draw seeds for every selector: paired differences). "
             f"Accuracies are on evaluation split B, importance is scored on the disjoint split A.", "",
             "## Members", "", "| member | half | space | generator | accuracy spread (pts) | MACs ρ | ceiling |",
             "|---|---|---|---|---|---|---|"]
    for name, m in result["members"].items():
        gen = ", ".join(f"{k}={v}" for k, v in m["generator"].items() if k not in ("num_samples", "train_split"))
        d = m["discriminative"]
        lines.append(f"| {name} | {m['half']} | {m['space']} | {gen} | {d['accuracy_spread_points']:.1f} | "
                     f"{_f(d['macs_spearman'])} | {_f(m['noise_ceiling'])} |")
    lines += ["", "## Recipe (tuning half, random proxies)", "", f"Rule: {choice['rule']}.", "",
              "| recipe | " + " | ".join(f"Spearman {_pct(float(r))} | steps / FLOPs {_pct(float(r))}" for r in ratios)
              + " |", "|" + "---|" * (1 + 2 * len(ratios))]
    for label, row in choice["recipes"].items():
        cells = []
        for r in ratios:
            c = row["cost"][r]
            cells += [_f(row["spearman"][r]), f"{c['steps_fraction']:.2f} / {c['flops_fraction']:.2f}"]
        lines.append(f"| {label}{' **(chosen)**' if label == choice['chosen'] else ''} | " + " | ".join(cells) + " |")
    lines += ["", "![frontier](frontier.png)", ""]
    for half in ("tuning", "held-out"):
        h = result["halves"][half]
        lines += [f"## {half.capitalize()} half: {', '.join(h['members'])}", "",
                  "Paired difference: per draw seed, the selector's Spearman minus random's, averaged over the "
                  "half's members; mean ± sd over seeds; wins = member-seeds where it beat random.", ""]
        lines += _half_table(h, ratios) + [""]
    lines += ["## Default", "", f"Chosen on the tuning half: **{default['chosen']}**, because {default['why']}.", ""]
    if default["chosen"] == "random":
        lines.append("On this suite no selector beat a random subset by the margin asked.")
    else:
        verdict = "beats" if default["held_out_beats_random"] else "does **not** beat"
        lines.append(f"On the held-out half {default['chosen']} {verdict} random by more than 2 sd at every ratio.")
    return "\n".join(lines) + "\n"
