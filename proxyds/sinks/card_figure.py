"""The dataset card's figure: per class, the train examples the proxy kept against the total.

One horizontal bar per class (the total in light grey, the kept part over it in blue, the
counts at the end), classes in label order; classes that label reduction dropped are named
"(dropped)". With more than ``MAX_ROWS`` classes the figure shows the ``MAX_ROWS // 2`` kept
classes with the highest kept share and the as many with the lowest, and says so in its title.

Drawn with matplotlib's Agg canvas under its default style (not the user's matplotlibrc) and
saved without the ``Software`` (matplotlib version) text chunk, so the same counts give a
byte-identical PNG on every run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["write_class_figure", "MAX_ROWS"]

MAX_ROWS = 40
_KEPT, _TOTAL, _DROPPED = "#1f77b4", "#d9d9d9", "#7f7f7f"
_NAME_CHARS = 28


def write_class_figure(path: Path, names: Sequence[str], kept: Sequence[int], total: Sequence[int], *,
                       dropped: Sequence[bool] | None = None, title: str = "") -> Path:
    """Draw the per-class bar chart (module doc) into the PNG ``path``; returns ``path``.

    ``kept[c] <= total[c]`` are counts of train examples of class ``c`` (``names[c]``);
    ``dropped[c]`` marks classes label reduction removed.
    """
    kept_a, total_a = np.asarray(kept), np.asarray(total)
    n = len(names)
    dropped_a = np.zeros(n, dtype=bool) if dropped is None else np.asarray(dropped, dtype=bool)
    if n == 0 or kept_a.shape != (n,) or total_a.shape != (n,) or dropped_a.shape != (n,):
        raise ValueError(f"names, kept, total and dropped must have one entry per class (got {n} names, "
                         f"{kept_a.shape} kept, {total_a.shape} total, {dropped_a.shape} dropped; at least one class)")
    if not (np.issubdtype(kept_a.dtype, np.integer) and np.issubdtype(total_a.dtype, np.integer)) \
            or (kept_a < 0).any() or (kept_a > total_a).any():
        raise ValueError("kept and total must be integer counts with 0 <= kept <= total for every class "
                         f"(got kept {kept_a.tolist()[:10]}…, total {total_a.tolist()[:10]}…)")
    if Path(path).suffix.lower() != ".png":
        raise ValueError(f"the figure is a PNG; give a path ending in .png (got {str(path)!r})")
    rows, note, gap = _rows(kept_a, total_a, dropped_a)
    _draw(Path(path), [_label(names[c], dropped_a[c]) for c in rows], kept_a[rows], total_a[rows],
          dropped_a[rows], title + note, gap)
    return Path(path)


def _rows(kept: np.ndarray, total: np.ndarray, dropped: np.ndarray) -> tuple[np.ndarray, str, int]:
    """The classes drawn, top to bottom; a title note when not all are; where a gap goes (0: none)."""
    n = len(kept)
    if n <= MAX_ROWS:
        return np.arange(n), "", 0
    live = np.flatnonzero(~dropped & (total > 0))
    share = kept[live] / total[live]
    order = live[np.lexsort((live, -share))]  # highest share first, ties by class index
    left_out = f"; {n - len(live)} dropped classes not shown" if len(live) < n else ""
    if len(order) <= MAX_ROWS:
        return order, f"\nthe {len(order)} kept classes of {n}, by kept share{left_out}", 0
    half = MAX_ROWS // 2
    note = f"\n{MAX_ROWS} of {n} classes: the {half} with the highest and the {half} with the lowest kept share{left_out}"
    return np.concatenate([order[:half], order[-half:]]), note, half


def _label(name: str, dropped: bool) -> str:
    name = str(name)
    name = name if len(name) <= _NAME_CHARS else name[:_NAME_CHARS - 1] + "…"
    return f"{name} (dropped)" if dropped else name


def _draw(path: Path, labels: list[str], kept: np.ndarray, total: np.ndarray, dropped: np.ndarray, title: str,
          gap: int) -> None:
    import matplotlib.style
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.style.context("default"):
        height = 1.5 + 0.24 * len(labels) + 0.2 * title.count("\n")
        fig = Figure(figsize=(7.5, height), dpi=100, layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        y = np.arange(len(labels))[::-1]
        ax.barh(y, total, height=0.7, color=_TOTAL, label="train split")
        ax.barh(y, kept, height=0.7, color=_KEPT, label="kept in the proxy")
        top = max(int(total.max()), 1)
        for yi, k, t in zip(y, kept, total):
            ax.text(t + top * 0.01, yi, f"{int(k):,} / {int(t):,}", va="center", fontsize=8)
        ax.set_yticks(y, labels, fontsize=8)
        for tick, is_dropped in zip(ax.get_yticklabels(), dropped):
            tick.set_color(_DROPPED if is_dropped else "black")
        ax.set_xlim(0, top * 1.22)
        ax.set_ylim(-0.6, len(labels) - 0.4)
        ax.set_xlabel("train examples")
        if gap:
            ax.axhline(len(labels) - gap - 0.5, color="black", linestyle=":", linewidth=1)
        fig.suptitle(title, fontsize=10)
        fig.legend(loc="outside lower center", ncols=2, fontsize=8, frameon=False)
        ax.spines[["top", "right"]].set_visible(False)
        fig.savefig(path, format="png", metadata={"Software": None})
