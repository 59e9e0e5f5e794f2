"""The per-category score chart (PNG), drawn with matplotlib's Agg canvas.

matplotlib is an optional dependency (the ``eval`` extra): it is imported only
here, only when a chart is drawn, and without touching pyplot's global state.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from m2_tools.evaluation.report import Report

__all__ = ["write_chart"]

logger = logging.getLogger(__name__)


def write_chart(report: Report, path: Path) -> bool:
    """Draw one horizontal bar panel per benchmark; return False when matplotlib is missing."""
    benchmarks = [bench for bench in report.benchmarks if bench.categories]
    if not benchmarks:
        return False
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        logger.warning("matplotlib is not installed (pip install 'm2-tools[eval]'); no chart")
        return False
    rows = [len(bench.categories) for bench in benchmarks]
    figure = Figure(figsize=(8.0, 1.0 + 0.32 * sum(rows) + 0.6 * len(rows)), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(benchmarks), 1, squeeze=False, height_ratios=[r + 1 for r in rows])
    for ax, bench in zip(axes[:, 0], benchmarks, strict=True):
        names = list(bench.categories)
        scores = [100 * bench.categories[name].score for name in names]
        bars = ax.barh(range(len(names)), scores, color="#4c72b0")
        ax.set_yticks(range(len(names)), [f"{n} (n={bench.categories[n].n})" for n in names])
        ax.invert_yaxis()
        ax.set_xlim(0, 100)
        ax.bar_label(bars, fmt="%.1f", padding=2, fontsize=8)
        headline = bench.headline_value
        value = "–" if headline is None else f"{100 * headline:.1f}"
        ax.set_title(f"{bench.benchmark}: {bench.headline} {value}", fontsize=10, loc="left")
        ax.tick_params(labelsize=8)
    axes[-1, 0].set_xlabel("score (%)")
    with warnings.catch_warnings():
        # Why: category names may hold glyphs (e.g. CJK) the default font lacks.
        warnings.simplefilter("ignore", UserWarning)
        figure.savefig(path, dpi=100)
    return True
