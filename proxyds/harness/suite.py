"""``proxyds evaluate --suite selectors``: the benchmark suite the build's defaults are chosen on.

A default tuned on the benchmarks it is judged on says little about a user's data. The suite
crosses MNIST-1D draws made with different generator settings (noise, shear, translation,
scale) with search spaces drawn with a seed from the ``cnn1d`` and ``mlp1d`` grids
(:mod:`proxyds.spaces.sampled`), and fixes, before anything is measured, which members are the
**tuning** half (draws ``d1``, ``d2``; spaces ``*-s1``, ``*-s2``) and which the **held-out**
half (draws ``d3``, ``d4``; spaces ``*-s3``, ``*-s4``; and real images: the ``digits`` preset
with ``digits-cnn``): no data setting and no space is shared.

Every member is a :func:`~proxyds.harness.streamed.evaluate_source` run: its proxies are made
by the build's own stages with the build's defaults (probes, signal check, label reduction,
selection), as ``proxyds build`` makes them. Two phases:

1. **recipes** (tuning half): ``random`` proxies trained with each candidate
   :class:`~proxyds.recipe.ProxyRecipe`; the recipe chosen is the best-ranking one among those
   whose 10% proxy costs at most a fifth of the full run in optimiser steps and in FLOPs.
2. **selectors** (both halves): every selector, trained with the chosen recipe. The default
   selector chosen on the tuning half is one that beats ``random`` there by more than two
   standard deviations of the paired difference at every ratio; when none does, ``random`` (or
   ``class-balanced`` when it is ahead of ``random`` at every ratio). The held-out half then
   says whether the choice generalises.

Each member's report (results.json, report.md) lands in ``OUT/members/``; the suite's
(suite.json, suite.md, frontier.png) in ``OUT``. Runs are cached, so ``--members`` can split
the work over processes and a last run without it only assembles.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from proxyds.harness.data import TrainRecipe
from proxyds.recipe import BATCH_BY_RATIO, SAME, ProxyRecipe

__all__ = ["Member", "SUITES", "run_suite", "choose_recipe", "choose_selector", "half_summary"]

log = logging.getLogger(__name__)

#: What every draw shares: 6,000 sequences, 4,002 train and 1,998 held out (cut in half into
#: reference split A and evaluation split B by the evaluation).
_DRAW = {"num_samples": 6000, "train_split": 0.667}
DRAWS = {
    "d1": dict(_DRAW, seed=11),  # the generator's defaults
    "d2": dict(_DRAW, seed=12, iid_noise_scale=0.05, corr_noise_scale=0.35, shear_scale=0.5, max_translation=36),
    "d3": dict(_DRAW, seed=13, iid_noise_scale=0.03, corr_noise_scale=0.15, shear_scale=1.0, max_translation=60,
               scale_coeff=0.5),
    "d4": dict(_DRAW, seed=14, iid_noise_scale=0.04, corr_noise_scale=0.3, shear_scale=0.6, max_translation=24,
               scale_coeff=0.3),
}


@dataclass(frozen=True)
class Member:
    """One benchmark of the suite: an MNIST-1D draw (or ``source``: a dataset ``proxyds build``
    takes, instead of a draw), a space, and the half it belongs to; ``configs`` (a number: that
    many configs spread by MACs), ``recipe`` and ``build`` (more build settings) override the suite's."""

    name: str
    draw: str | None
    space: str
    half: str  # "tuning" or "held-out"
    source: str | None = None
    configs: int | None = None
    recipe: TrainRecipe | None = None
    build: tuple[tuple[str, object], ...] = ()


SUITES: dict[str, dict] = {
    "selectors": dict(
        draws=DRAWS,
        members=tuple(Member(f"{d}-{kind}", d, f"{kind}-s{d[1]}", "tuning" if d in ("d1", "d2") else "held-out")
                      for d in DRAWS for kind in ("cnn1d", "mlp1d"))
        # real images: scikit-learn's digits, 8 of digits-cnn's 16 configs spread by MACs (its recipe:
        # docs/benchmarks.md)
        + (Member("digits", None, "digits-cnn", "held-out", source="digits", configs=8,
                  recipe=TrainRecipe(epochs=8, batch_size=64, lr=2e-3), build=(("workers", 0),)),),
        recipe=TrainRecipe(epochs=10, batch_size=128, lr=2e-3), ratios=(0.05, 0.1), full_seeds=2, proxy_seeds=5,
        selectors=("random", "class-balanced", "entropy", "probe", "entropy-committee", "easy-soft"),
        recipes={"batch x ratio (v0.1 default)": BATCH_BY_RATIO,
                 "same (paper)": SAME,
                 "same batch, 1.5x epochs": ProxyRecipe(epoch_scale=1.5),
                 "batch x ratio^0.25": ProxyRecipe(batch_power=0.25, lr_batch_power=0.5)},
        recipe_seeds=3, max_cost=0.2),
    # a smoke run of the whole suite (both phases, both halves) in about a minute, for CI
    "tiny": dict(
        draws={"t1": {"num_samples": 1200, "train_split": 0.6, "seed": 11},
               "t2": {"num_samples": 1200, "train_split": 0.6, "seed": 13, "iid_noise_scale": 0.05}},
        build={"probe_epochs": 10, "batch_size": 32},  # probes above chance on 720 examples
        members=(Member("t1-cnn1d", "t1", "cnn1d-s1", "tuning"), Member("t2-mlp1d", "t2", "mlp1d-s3", "held-out")),
        recipe=TrainRecipe(epochs=2, batch_size=64, lr=2e-3), ratios=(0.25,), full_seeds=2, proxy_seeds=2,
        configs=3, selectors=("random", "class-balanced", "entropy"),
        recipes={"same (paper)": SAME, "batch x ratio (v0.1 default)": BATCH_BY_RATIO}, recipe_seeds=2, max_cost=0.5),
}


def _member_config(suite: dict, member: Member, out: Path, cache: Path, *, selectors, proxy_seeds: int,
                   proxy_recipe: ProxyRecipe):
    from proxyds.harness.settings import EvaluateConfig
    from proxyds.presets import materialize_mnist1d
    from proxyds.spaces import get_space

    source, data = (member.source, None) if member.source else ("mnist1d", str(materialize_mnist1d(
        suite["draws"][member.draw])))
    r, n = member.recipe or suite["recipe"], member.configs or suite.get("configs")
    configs = tuple(c.name for c in get_space(member.space).probes(n)) if n else None
    return EvaluateConfig.from_source(source, out, data=data, space=member.space, selectors=tuple(selectors),
                                      configs=configs,
                                      ratios=suite["ratios"], full_seeds=suite["full_seeds"], proxy_seeds=proxy_seeds,
                                      epochs=r.epochs, batch_size=r.batch_size, lr=r.lr,
                                      proxy_recipe=proxy_recipe, cache=cache / member.name,
                                      build={**suite.get("build", {}), **dict(member.build)})


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text).strip("-").replace("--", "-")


def _member_dir(out: Path, member: str, recipe: str | None = None) -> Path:
    """Where one member's evaluation of ``recipe`` (phase 1), or of every selector (phase 2), is written."""
    return out / "members" / member / (f"recipe-{_slug(recipe)}" if recipe else "selectors")


def run_suite(name: str, out, *, cache=None, members=None, phase: str = "all") -> dict | None:
    """Run (or read from the cache) the suite ``name``'s members and write its report to ``out``.
    ``members``: names to run (default all; with a subset nothing is assembled). ``phase``:
    ``recipes``, ``selectors`` or ``all``. Returns the suite's results when assembled."""
    from proxyds.harness.evaluate import evaluate
    from proxyds.presets import cache_dir

    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}; known: {', '.join(SUITES)}")
    if phase not in ("recipes", "selectors", "all"):
        raise ValueError(f"phase must be recipes, selectors or all (got {phase!r})")
    suite, out = SUITES[name], Path(out)
    known = [m.name for m in suite["members"]]
    for m in members or ():
        if m not in known:
            raise ValueError(f"unknown member {m!r} of suite {name!r}; known: {', '.join(known)}")
    chosen = [m for m in suite["members"] if members is None or m.name in members]
    cache = Path(cache or cache_dir() / "evaluate-suite")
    for m in chosen:  # phase 1: candidate recipes on the tuning half, random proxies
        if m.half != "tuning" or phase == "selectors":
            continue
        for label, recipe in suite["recipes"].items():
            cfg = _member_config(suite, m, _member_dir(out, m.name, label), cache, selectors=("random",),
                                 proxy_seeds=suite["recipe_seeds"], proxy_recipe=recipe)
            log.info("suite %s: member %s, recipe %s", name, m.name, label)
            evaluate(cfg)  # its results.json is read back by _read, with any other process's
    if phase == "recipes":
        return None
    recipe_label = choose_recipe(suite, _read(out, suite, "recipes"))["chosen"]
    for m in chosen:  # phase 2: every selector with the chosen recipe, both halves
        cfg = _member_config(suite, m, _member_dir(out, m.name), cache, selectors=suite["selectors"],
                             proxy_seeds=suite["proxy_seeds"], proxy_recipe=suite["recipes"][recipe_label])
        log.info("suite %s: member %s, every selector", name, m.name)
        evaluate(cfg)
    if members is not None:
        return None
    return assemble_suite(name, out)


def _read(out: Path, suite: dict, phase: str) -> dict:
    """The members' results.json of ``phase`` that exist: {recipe label: {member: results}} for
    ``recipes``, {member: results} for ``selectors``."""
    got: dict = {}
    for m in suite["members"]:
        if phase == "recipes":
            for label in suite["recipes"]:
                path = _member_dir(out, m.name, label) / "results.json"
                if path.exists():
                    got.setdefault(label, {})[m.name] = json.loads(path.read_text())
        else:
            path = _member_dir(out, m.name) / "results.json"
            if path.exists():
                got[m.name] = json.loads(path.read_text())
    return got


def _values(result: dict, selector: str, ratio: str, metric: str = "spearman") -> np.ndarray:
    return np.asarray(result["proxies"][selector][ratio]["metrics"][metric]["values"], dtype=np.float64)


def choose_recipe(suite: dict, by_recipe: dict) -> dict:
    """The tuning half's recipes: each one's mean Spearman (random proxies, every tuning member,
    ratio and seed) and cost; the chosen one is the best among those costing at most ``max_cost``
    of the full run in steps and in FLOPs at the largest ratio."""
    tuning = [m.name for m in suite["members"] if m.half == "tuning"]
    rows = {}
    for label in suite["recipes"]:
        runs = by_recipe.get(label, {})
        missing = [m for m in tuning if m not in runs]
        if missing:
            raise ValueError(f"recipe {label!r} has not been run on the tuning members {missing}: run the "
                             f"suite with --phase recipes (or all) first")
        per_ratio = {r: float(np.mean([_values(runs[m], "random", r).mean() for m in tuning]))
                     for r in runs[tuning[0]]["proxies"]["random"]}
        cost = {r: {k: max(runs[m]["settings"]["proxy_cost"][r][k] for m in tuning)
                    for k in ("steps_fraction", "flops_fraction")} for r in per_ratio}
        rows[label] = {"spearman": per_ratio, "mean_spearman": float(np.mean(list(per_ratio.values()))),
                       "cost": cost, "recipe": suite["recipes"][label].to_json(),
                       "cheap": all(v <= suite["max_cost"] for v in cost[max(cost, key=float)].values())}
    cheap = [label for label, row in rows.items() if row["cheap"]]
    if not cheap:
        raise ValueError(f"no candidate recipe costs at most {suite['max_cost']} of the full run at the largest ratio")
    chosen = max(cheap, key=lambda label: rows[label]["mean_spearman"])
    return {"recipes": rows, "chosen": chosen, "max_cost": suite["max_cost"],
            "rule": f"the best mean Spearman (random proxies, tuning half) among the recipes whose largest proxy "
                    f"costs at most {suite['max_cost']:g} of the full run in optimiser steps and in FLOPs"}


def half_summary(suite: dict, results: dict, half: str) -> dict:
    """Per selector and ratio, over the half's members: mean Spearman and top-half Spearman, the
    paired difference against random (per seed, averaged over members: mean, sd, n) and how many
    member-seeds it won; the noise ceiling and the training-free baselines, averaged."""
    names = [m.name for m in suite["members"] if m.half == half and m.name in results]
    if not names:
        return {"members": []}
    first = results[names[0]]
    ratios = list(first["proxies"]["random"])
    out: dict = {"members": names, "selectors": {}}
    for sel in suite["selectors"]:
        row = {}
        for r in ratios:
            rho = np.stack([_values(results[m], sel, r) for m in names])          # members x seeds
            top = np.stack([_values(results[m], sel, r, "top_half_spearman") for m in names])
            base = np.stack([_values(results[m], "random", r) for m in names])
            d = (rho - base).mean(0)                                              # per seed
            sd = float(d.std(ddof=1)) if len(d) > 1 else math.nan
            row[r] = {"spearman": float(rho.mean()), "top_half_spearman": float(np.nanmean(top)),
                      "vs_random": {"mean": float(d.mean()), "sd": sd, "n": int(len(d)),
                                    "wins": int((rho > base).sum()), "pairs": int(rho.size),
                                    "beats_by_2sd": bool(sel != "random" and d.mean() > 2 * sd)}}
        out["selectors"][sel] = row
    out["noise_ceiling"] = float(np.mean([results[m]["noise_ceiling"]["spearman"] for m in names]))
    out["baselines"] = {b: float(np.mean([results[m]["baselines"][b]["spearman"] for m in names]))
                        for b in first["baselines"]}
    return out


def choose_selector(suite: dict, tuning: dict) -> dict:
    """The default selector from the tuning half's summary (see the module doc)."""
    rows = tuning["selectors"]
    winners = [s for s, row in rows.items() if s != "random" and all(v["vs_random"]["beats_by_2sd"]
                                                                      for v in row.values())]
    if winners:
        chosen = max(winners, key=lambda s: np.mean([v["vs_random"]["mean"] for v in rows[s].values()]))
        why = f"{chosen} beats random by more than 2 sd of the paired difference at every ratio on the tuning half"
    elif "class-balanced" in rows and all(v["vs_random"]["mean"] > 0 for v in rows["class-balanced"].values()):
        chosen = "class-balanced"
        why = ("no selector beats random by more than 2 sd on the tuning half; class-balanced (a random draw with "
               "equal weight per class) is ahead of random at every ratio, and keeps rare classes")
    else:
        chosen = "random"
        why = "no selector beats random by more than 2 sd on the tuning half, and class-balanced is not ahead of it"
    return {"chosen": chosen, "why": why}


def assemble_suite(name: str, out) -> dict:
    """Read every member's results under ``out`` and write suite.json, suite.md, frontier.png."""
    from proxyds.harness.suite_report import write_suite

    suite, out = SUITES[name], Path(out)
    recipes = choose_recipe(suite, _read(out, suite, "recipes"))
    selectors = _read(out, suite, "selectors")
    missing = [m.name for m in suite["members"] if m.name not in selectors]
    if missing:
        raise ValueError(f"members {missing} have no selector results under {out}: run them first")
    halves = {h: half_summary(suite, selectors, h) for h in ("tuning", "held-out")}
    default = choose_selector(suite, halves["tuning"])
    held = halves["held-out"]["selectors"].get(default["chosen"], {})
    default["held_out_beats_random"] = (default["chosen"] != "random"
                                        and all(v["vs_random"]["beats_by_2sd"] for v in held.values()))
    members = {m.name: {"draw": m.draw, "generator": suite["draws"].get(m.draw, {"source": m.source}), "space": m.space, "half": m.half,
                        "discriminative": selectors[m.name]["discriminative"],
                        "noise_ceiling": selectors[m.name]["noise_ceiling"]["spearman"],
                        "spearman": {s: {r: e["metrics"]["spearman"]["mean"] for r, e in by.items()}
                                     for s, by in selectors[m.name]["proxies"].items()},
                        "timing": selectors[m.name]["timing"]} for m in suite["members"]}
    result = {"suite": name, "recipe_choice": recipes, "halves": halves, "default": default, "members": members,
              "settings": {"recipe": asdict(suite["recipe"]), "ratios": list(suite["ratios"]),
                           "full_seeds": suite["full_seeds"], "proxy_seeds": suite["proxy_seeds"],
                           "recipe_seeds": suite["recipe_seeds"], "selectors": list(suite["selectors"])}}
    write_suite(result, out)
    return result
