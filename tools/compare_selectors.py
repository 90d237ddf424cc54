"""Print every selector of one or more ``proxyds evaluate`` results.json side by side with
random: Spearman and top-half Spearman (mean ± std over proxy seeds), the paired difference
against random (mean ± std of the per-seed differences) and whether the issue-8 bar holds
(mean difference > 2 std of the paired difference).

    python tools/compare_selectors.py out/eval/results.json [more/results.json ...]
"""

from __future__ import annotations

import json
import sys


def table(path: str) -> str:
    r = json.load(open(path))
    lines = [f"## {r['benchmark']} ({r['space']}), {r['settings']['proxy_seeds']} proxy seeds"
             + (f", proxy recipe {r['settings'].get('proxy_recipe')}" if r["settings"].get("proxy_recipe") else ""),
             f"MACs {r['baselines']['macs']['spearman']:.3f} / top-half {r['baselines']['macs']['top_half_spearman']:.3f}; "
             f"params {r['baselines']['params']['spearman']:.3f} / {r['baselines']['params']['top_half_spearman']:.3f}; "
             f"ceiling {r['noise_ceiling']['spearman']:.3f} / {r['noise_ceiling']['top_half_spearman']:.3f}", "",
             "| selector | ratio | Spearman | vs random | >2sd | top-half | vs random | >2sd |",
             "|---|---|---|---|---|---|---|---|"]
    for sel, by_ratio in r["proxies"].items():
        for ratio, e in by_ratio.items():
            cells = [sel, ratio]
            for m in ("spearman", "top_half_spearman"):
                s = e["metrics"][m]
                cells.append(f"{s['mean']:.3f} ± {s['std']:.3f}")
                d = e.get("vs_random", {}).get(m)
                if d:
                    cells += [f"{d['mean']:+.3f} ± {d['std']:.3f}", "yes" if d["mean"] > 2 * d["std"] else "no"]
                else:
                    cells += ["", ""]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    print("\n\n".join(table(p) for p in sys.argv[1:]))
