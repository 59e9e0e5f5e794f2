"""The per-category score chart (PNG), drawn with matplotlib's Agg canvas.

One horizontal bar panel per benchmark: each category's score over a light 0-100 %
track (so a panel of zeros still shows its rows), its item count, the chance level
of multiple-choice categories as a dashed mark, and the model and run date in the
title. matplotlib is an optional dependency (the ``eval`` extra): it is imported
only here, only when a chart is drawn, and without touching pyplot's global state.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from m2_tools.evaluation.aggregates import BenchmarkSummary, CategoryScore

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["write_chart"]

logger = logging.getLogger(__name__)

_BAR = "#4c72b0"
_TRACK = "#e8e8e8"
_CHANCE = "#c44e52"


def write_chart(
    benchmarks: Sequence[BenchmarkSummary],
    path: Path,
    *,
    model: str | None = None,
    date: str | None = None,
) -> bool:
    """Draw the chart of ``benchmarks`` into ``path``.

    Args:
        benchmarks: The summaries to draw (those without categories are skipped).
        path: The PNG to write.
        model: The model's name, shown in the title.
        date: The run's date, shown in the title.

    Returns:
        False when there is nothing to draw or matplotlib is missing.
    """
    shown = [bench for bench in benchmarks if bench.categories]
    if not shown:
        return False
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        logger.warning("matplotlib is not installed (pip install 'm2-tools[eval]'); no chart")
        return False
    rows = [len(bench.categories) for bench in shown]
    height = 1.3 + 0.34 * sum(rows) + 0.7 * len(rows)
    figure = Figure(figsize=(9.0, height), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(shown), 1, squeeze=False, height_ratios=[r + 1 for r in rows])
    chance_drawn = False
    for ax, bench in zip(axes[:, 0], shown, strict=True):
        chance_drawn |= _panel(ax, bench)
    axes[-1, 0].set_xlabel("score (%)")
    if chance_drawn:
        axes[0, 0].legend(loc="lower right", fontsize=7, frameon=False)
    figure.suptitle(_title(model, date), fontsize=10)
    with warnings.catch_warnings():
        # Why: category names may hold glyphs (e.g. CJK) the default font lacks.
        warnings.simplefilter("ignore", UserWarning)
        figure.savefig(path, dpi=100)
    return True


def _title(model: str | None, date: str | None) -> str:
    name = model or "unknown model"
    if "/" in name and Path(name).exists():
        name = Path(name).name  # a local checkpoint: its folder name, not the machine path
    return f"m2-tools eval · {name}" + (f" · run {date}" if date else "")


def _panel(ax: Axes, bench: BenchmarkSummary) -> bool:
    """One benchmark's bars; True when a chance mark was drawn."""
    names = list(bench.categories)
    cats = [bench.categories[name] for name in names]
    ys = range(len(names))
    scores = [100 * (c.score or 0.0) for c in cats]
    ax.barh(ys, [100] * len(names), color=_TRACK, height=0.7)
    ax.barh(ys, scores, color=_BAR, height=0.7)
    ax.set_yticks(list(ys), names)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    for y, (score, cat) in enumerate(zip(scores, cats, strict=True)):
        inside = score > 72  # a long bar holds its own label
        x, align, color = (
            (score - 1.5, "right", "white") if inside else (score + 1.5, "left", "black")
        )
        ax.text(x, y, _label(cat), va="center", ha=align, color=color, fontsize=7)
    chances = [(y, c.chance) for y, c in enumerate(cats) if c.chance is not None]
    for index, (y, chance) in enumerate(chances):
        label = "chance" if index == 0 else "_nolegend_"
        ax.vlines(
            100 * chance, y - 0.42, y + 0.42, colors=_CHANCE, linestyles="dashed", label=label
        )
    value = bench.headline_value
    shown = "–" if value is None else f"{100 * value:.1f}%"
    judge = f", {bench.counts['judge']} left to a judge" if bench.counts.get("judge") else ""
    ax.set_title(
        f"{bench.benchmark}: {bench.headline} {shown} (n={bench.n}{judge})", fontsize=9, loc="left"
    )
    ax.tick_params(labelsize=8)
    return bool(chances)


def _label(cat: CategoryScore) -> str:
    score = "–" if cat.score is None else f"{100 * cat.score:.1f}%"
    judge = f", +{cat.judge} judge" if cat.judge else ""
    return f"{score}  (n={cat.n}{judge})"
