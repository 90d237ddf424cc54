"""The evaluation report: ``results.json``, ``report.md`` (laid out like the paper's Table 1)
and PNG figures (:mod:`proxyds.harness.figures`: the headline, the paper's Figure 2 pairwise
heatmaps, and proxy-vs-full scatter plots).

:func:`assemble` turns accuracy tables into the JSON-ready results (all metrics from
:mod:`proxyds.harness.metrics`); :func:`write` renders them. Both are independent of how the
accuracies were obtained.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from proxyds.harness import metrics as M
from proxyds.harness.figures import (HEADLINE, _ms, _pct, flat_selectors, pairwise_title, plot_headline,
                                     plot_pairwise, plot_scatter)
from proxyds.harness.figures import _plt  # noqa: F401  (suite_report draws with it)

__all__ = ["assemble", "write", "write_markdown", "plot_headline", "plot_pairwise", "plot_scatter"]

_ROWS = (("pearson", "Pearson"), ("spearman", "Spearman"), ("kendall", "Kendall τ"),
         ("top_half_spearman", "top-half Spearman"), ("top1_kept", "top-1 kept"), ("top3_overlap", "top-3 overlap"),
         ("regret", "regret (points)"), ("pair_agreement", "pairs ordered as full"))


#: When a benchmark can tell selectors apart: configs differ, compute alone does not rank them,
#: and the full-data ranking repeats across seeds.
DISCRIMINATIVE = ("full-data accuracy spread >= 5 points, rank-by-MACs Spearman <= 0.8, noise ceiling >= 0.9, "
                  "20 to 36 configs")


def assemble(cfg, data_description: dict, space, configs, num_classes: int, full_acc: np.ndarray,
             proxy_acc: dict, notes: dict, timing: dict, zero_cost: dict | None = None) -> dict:
    """Results as a JSON-ready dict. ``full_acc`` is (full seeds, configs); ``proxy_acc[(sel, ratio)]``
    is (proxy seeds, configs); all accuracies are on evaluation split B. ``zero_cost`` maps a
    training-free score's name to its value per config (:mod:`proxyds.harness.zerocost`),
    reported as baselines beside rank by MACs and by params."""
    full_mean = full_acc.mean(0)
    macs = np.array([space.macs(c, num_classes) for c in configs], dtype=np.float64)
    params = np.array([space.params(c, num_classes) for c in configs], dtype=np.float64)
    proxies: dict = {}
    for (sel, ratio), acc in proxy_acc.items():
        per_seed = [M.ranking_metrics(full_mean, row) for row in acc]
        entry = {"accuracy": acc.tolist(), "mean": acc.mean(0).tolist(),
                 "metrics": {m: M.summarize([p[m] for p in per_seed]) for m in per_seed[0]}}
        proxies.setdefault(sel, {})[str(ratio)] = entry
    for sel, by_ratio in proxies.items():  # paired by proxy seed against random
        for ratio, entry in by_ratio.items():
            if sel != "random" and "random" in proxies:
                base = proxies["random"][ratio]["metrics"]
                entry["vs_random"] = {m: M.paired_difference(entry["metrics"][m]["values"], base[m]["values"],
                                                             bounds=M.DIFFERENCE_BOUNDS[m])
                                      for m in ("spearman", "top_half_spearman", "kendall", "regret")}
    top = M.top_half(full_mean)
    pairs = list(itertools.combinations(range(len(full_acc)), 2))
    ceiling = {"spearman": M.noise_ceiling(full_acc),
               "spearman_values": [M.spearman(full_acc[i], full_acc[j]) for i, j in pairs],
               "top_half_spearman": float(np.mean([M.spearman(full_acc[i][top], full_acc[j][top]) for i, j in pairs]))
               if pairs else math.nan,
               "seed_pairs": len(pairs)}
    spread = float(full_mean.max() - full_mean.min())
    macs_rho = M.spearman(full_mean, macs)
    return {
        "benchmark": cfg.benchmark, "space": space.name, "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "settings": {"selectors": list(cfg.selectors), "ratios": list(cfg.ratios), "full_seeds": cfg.full_seeds,
                     "proxy_seeds": cfg.proxy_seeds, "recipe": asdict(cfg.recipe),
                     "proxy_recipe": cfg.proxy_recipe.to_json(),
                     "proxy_training": {str(r): asdict(cfg.proxy_training(r)) for r in cfg.ratios},
                     "proxy_cost": {str(r): cfg.proxy_cost(r, int(data_description["sizes"]["train"]))
                                    for r in cfg.ratios},
                     "data": asdict(cfg.data),
                     "seeds": data_description.get("seeds", "full run s: train seed s; proxy run s: draw seed s "
                                                            "(every selector), train seed 1000+s")},
        "data": data_description,
        "configs": [{"name": c.name, "macs": int(macs[i]), "params": int(params[i]), "full": full_acc[:, i].tolist(),
                     "full_mean": float(full_mean[i]), "full_std": float(full_acc[:, i].std(ddof=1))
                     if len(full_acc) > 1 else 0.0} for i, c in enumerate(configs)],
        "proxies": proxies,
        "baselines": {"macs": M.ranking_metrics(full_mean, macs), "params": M.ranking_metrics(full_mean, params),
                      **{name: M.ranking_metrics(full_mean, np.asarray(v, dtype=np.float64))
                         for name, v in (zero_cost or {}).items()}},
        "noise_ceiling": ceiling,
        "discriminative": {"accuracy_spread_points": 100 * spread, "macs_spearman": macs_rho,
                           "noise_ceiling": ceiling["spearman"], "configs": len(configs),
                           "criteria": DISCRIMINATIVE,
                           "is_discriminative": bool(spread >= 0.05 and macs_rho <= 0.8
                                                     and ceiling["spearman"] >= 0.9 and 20 <= len(configs) <= 36)},
        "selector_notes": _flag_flat(notes, cfg.proxy_seeds),
        "timing": timing,
    }


def _flag_flat(notes: dict, proxy_seeds: int) -> dict:
    """Each selector's notes with ``flat_weights`` (bool) and, for any selector but ``random`` that gave
    every usable example the same weight, ``flat_weights_note`` saying its proxies are random subsets.
    The runs record ``flat_weight_seeds``: the proxy seeds whose weights came out flat."""
    out = {}
    for sel, note in notes.items():
        seeds = note.get("flat_weight_seeds", [])
        note = {**note, "flat_weights": bool(seeds)}
        if seeds and sel != "random":
            which = "every proxy seed" if len(seeds) >= proxy_seeds else \
                f"proxy seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))} of {proxy_seeds}"
            note["flat_weights_note"] = (f"`{sel}` gave every usable train example the same weight on {which}: "
                                         f"those proxies are plain random subsets, the same draws as `random`'s; "
                                         f"the selector measured nothing on this data")
        out[sel] = note
    return out


def write(results: dict, out: Path) -> None:
    """results.json, the figures and report.md into ``out`` (created if needed)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures = []
    full = np.array([c["full_mean"] for c in results["configs"]])
    for sel, by_ratio in results["proxies"].items():
        for ratio, entry in by_ratio.items():
            name = f"pairwise-{sel}-{float(ratio) * 100:g}pct.png"
            plot_pairwise(full, np.array(entry["accuracy"]), out / name, title=pairwise_title(sel, ratio, entry))
            figures.append((f"{sel} {_pct(float(ratio))}", name))
    plot_headline(results, out / HEADLINE)
    plot_scatter(results, out / "scatter.png")
    (out / "results.json").write_text(json.dumps(_finite(results), indent=1, default=float))
    (out / "report.md").write_text(write_markdown(results, figures))


def _finite(obj):
    """NaN/inf -> None, recursively, so results.json is strict JSON."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _num(x: float, digits: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def write_markdown(r: dict, figures: list[tuple[str, str]]) -> str:
    """report.md: the headline figure and any flat-weight warning, data and settings, then Table 1
    (configs x full and proxy accuracies, then the correlation rows), the paired difference against
    random, baselines and noise ceiling."""
    cols = [(sel, ratio) for ratio in map(str, r["settings"]["ratios"]) for sel in r["settings"]["selectors"]]
    lines = _md_headline(r) + _md_settings(r) + _md_table1(r, cols) + _md_vs_random(r, cols) + _md_baselines(r)
    lines += _md_notes_and_timing(r)
    lines += [f"![pairwise {label}]({name})" for label, name in figures]
    return "\n".join(lines) + "\n"


def _md_headline(r: dict) -> list[str]:
    st = r["settings"]
    flat = sorted(flat_selectors(r))
    return [f"# proxyds evaluate: `{r['benchmark']}` on space `{r['space']}`", "",
            f"{r['date']}. Accuracies are on **evaluation split B**; importance is scored on **reference split A**.",
            "", f"![Spearman against the full-data ranking by proxy size]({HEADLINE})", "",
            f"Spearman between each proxy's ranking of the {len(r['configs'])} configs and the full data's, mean ± std "
            f"over {st['proxy_seeds']} proxy seeds (`random` in black); green: the noise ceiling (full-data seeds "
            f"against each other; band: lowest to highest seed pair); dashed: rankings that train nothing.", "",
            *[f"**Flat weights:** {r['selector_notes'][sel]['flat_weights_note']}." for sel in flat],
            *([""] if flat else [])]


def _md_settings(r: dict) -> list[str]:
    st, d = r["settings"], r["data"]
    return ["## Data and settings", "", f"- train: {d['train']}", f"- reference split A: {d['reference_A']}",
            f"- evaluation split B: {d['evaluation_B']}",
            *([f"- generator: `{json.dumps(d['generator'])}`"] if "generator" in d else
              [f"- source: `{d.get('source', r['benchmark'])}`; build settings: "
               f"`{json.dumps(d.get('build_settings', {}), default=str)}`"]),
            f"- full-data training: `{json.dumps(st['recipe'])}`",
            f"- proxy training: `{json.dumps(st.get('proxy_training', st['recipe']))}` "
            f"(proxy recipe `{json.dumps(st.get('proxy_recipe', {}))}`)",
            *[f"- cost of one {_pct(float(ratio))} proxy run: {c['steps']:,} optimiser steps against the full "
              f"run's {c['full_steps']:,} ({c['steps_fraction']:.2f}), {c['flops_fraction']:.2f} of its FLOPs"
              for ratio, c in st.get("proxy_cost", {}).items()],
            f"- {st['full_seeds']} full-data seeds; {st['proxy_seeds']} proxy seeds per selector and ratio "
            f"({st['seeds']})", "",
            "## Table 1: accuracy (%) on split B, mean over seeds", ""]


def _md_table1(r: dict, cols: list) -> list[str]:
    head = ["#", "rank", "config", "MACs", "full"] + [f"{sel} {_pct(float(ratio))}" for sel, ratio in cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    full_mean = [c["full_mean"] for c in r["configs"]]
    best, rank = int(np.argmax(full_mean)), np.empty(len(full_mean), int)
    rank[np.argsort(-np.asarray(full_mean), kind="stable")] = np.arange(1, len(full_mean) + 1)
    for i, c in enumerate(r["configs"]):
        full = f"{100 * c['full_mean']:.1f} ± {100 * c['full_std']:.1f}"
        cells = [str(i + 1), str(rank[i]), f"`{c['name']}`", f"{c['macs']:,}", f"**{full}**" if i == best else full]
        for sel, ratio in cols:
            acc = r["proxies"][sel][ratio]["mean"]
            cells.append(f"**{100 * acc[i]:.1f}**" if i == int(np.argmax(acc)) else f"{100 * acc[i]:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    for key, label in _ROWS:
        scale, digits = (100, 2) if key == "regret" else (1, 3)
        cells = [label, "", "", "", "—"] + [_ms(r["proxies"][sel][ratio]["metrics"][key], scale, digits)
                                            for sel, ratio in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return lines + ["", "rank: the config's rank on the full data (1 = best; the heatmaps' axes). Bold: the best "
                    "config on the full data, and the one each proxy ranks first. Rows below the configs: mean ± std "
                    "over proxy seeds, each seed's proxy accuracies against the mean full accuracy."]


def _md_vs_random(r: dict, cols: list) -> list[str]:
    lines = ["", "## Paired difference against `random` (same seed, same draw uniforms)", "",
             "Mean over proxy seeds of the selector's value minus `random`'s, with a 95% t-interval clipped to the "
             "range a difference can take (correlations [-2, 2], regret [-100, 100] points).", "",
             "| selector | ratio | Δ Spearman (95% CI) | Δ top-half Spearman (95% CI) "
             "| Δ regret, points (95% CI) |",
             "|---|---|---|---|---|"]
    for sel, ratio in cols:
        vr = r["proxies"][sel][ratio].get("vs_random")
        if vr:
            cells = [_diff(vr["spearman"]), _diff(vr["top_half_spearman"]), _diff(vr["regret"], 100, 2)]
            lines.append(f"| {sel} | {_pct(float(ratio))} | " + " | ".join(cells) + " |")
    return lines


def _md_baselines(r: dict) -> list[str]:
    ce = r["noise_ceiling"]
    lines = ["", "## Zero-cost baselines and noise ceiling", "",
             "| ranking | Spearman | Kendall τ | top-half Spearman | top-1 kept | regret (points) |",
             "|---|---|---|---|---|---|"]
    labels = {"macs": "rank by MACs", "params": "rank by params", "synflow": "SynFlow (training-free)",
              "naswot": "NASWOT (training-free)"}
    for key, b in r["baselines"].items():
        name = labels.get(key, key)
        lines.append(f"| {name} | {_num(b['spearman'])} | {_num(b['kendall'])} | {_num(b['top_half_spearman'])} | "
                     f"{int(b['top1_kept'])} | {100 * b['regret']:.2f} |")
    lines.append(f"| noise ceiling: full seed vs full seed ({ce['seed_pairs']} pairs) | {_num(ce['spearman'])} | | "
                 f"{_num(ce['top_half_spearman'])} | | |")
    dd = r["discriminative"]
    return lines + ["", f"Full-data accuracy spread {dd['accuracy_spread_points']:.1f} points; rank-by-MACs Spearman "
                    f"{_num(dd['macs_spearman'])}; noise ceiling {_num(dd['noise_ceiling'])}; {dd['configs']} configs "
                    f"(a discriminative benchmark, i.e. {DISCRIMINATIVE}: "
                    f"{'yes' if dd['is_discriminative'] else 'no'}).", ""]


def _md_notes_and_timing(r: dict) -> list[str]:
    lines = []
    if r["selector_notes"]:
        lines += ["## Selector notes", ""]
        for sel, note in r["selector_notes"].items():
            shown = {k: v for k, v in note.items() if k != "class_counts"}
            if shown:
                lines.append(f"- `{sel}`: `{json.dumps(shown, default=float)}`")
        lines.append("")
    t = r["timing"]
    return lines + ["## Timing", "", f"{t['full_runs']} full-data runs ({t['full_train_seconds']:.0f} s of training, "
                    f"summed over runs), {t['proxy_runs']} proxy runs ({t['proxy_train_seconds']:.0f} s); this "
                    f"invocation trained {t.get('trained_runs', 'n/a')} of them (the rest came from the run cache) in "
                    f"wall-clock seconds {json.dumps(t['wall_seconds'])}.", "", "## Figures", "",
                    "![proxy vs full accuracy](scatter.png)", ""]


def _diff(p: dict, scale: float = 1.0, digits: int = 3) -> str:
    lo, hi = p["ci"]
    if math.isnan(lo):
        return f"{scale * p['mean']:+.{digits}f} (n={p['n']})"
    return f"{scale * p['mean']:+.{digits}f} [{scale * lo:+.{digits}f}, {scale * hi:+.{digits}f}]"
