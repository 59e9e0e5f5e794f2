"""Two runs side by side: metric and category differences, and the items that flipped."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from m2_tools.evaluation.aggregates import BenchmarkSummary
from m2_tools.evaluation.records import EvalRecord
from m2_tools.evaluation.report import build_report, load_run, pct

__all__ = ["Comparison", "Delta", "Flip", "compare_runs", "render_comparison"]

_SHOWN_FLIPS = 50


class Delta(BaseModel):
    """One number in both runs (fractions; ``delta`` = B − A)."""

    benchmark: str
    name: str
    a: float | None
    b: float | None
    delta: float | None


class Flip(BaseModel):
    """An item scored differently by the two runs."""

    benchmark: str
    id: str
    category: str
    gold: str
    a_score: float
    b_score: float
    a_answer: str | None
    b_answer: str | None


class Comparison(BaseModel):
    """What ``--compare RUN_A RUN_B`` reports."""

    run_a: str
    run_b: str
    common_items: int
    only_a: int
    only_b: int
    metrics: list[Delta]
    categories: list[Delta]
    gained: list[Flip]
    lost: list[Flip]


def _delta(benchmark: str, name: str, a: float | None, b: float | None) -> Delta:
    diff = b - a if a is not None and b is not None else None
    return Delta(benchmark=benchmark, name=name, a=a, b=b, delta=diff)


def _answer(record: EvalRecord) -> str | None:
    if record.error is not None:
        return f"error: {record.error.code}"
    pred = record.prediction
    return None if pred is None else (pred.choice or pred.answer)


def compare_runs(run_a: Path, run_b: Path) -> Comparison:
    """Compare two run directories by their records (reports are rebuilt from them)."""
    records_a, info_a = load_run(run_a)
    records_b, info_b = load_run(run_b)
    report_a = {s.benchmark: s for s in build_report(records_a, info_a).benchmarks}
    report_b = {s.benchmark: s for s in build_report(records_b, info_b).benchmarks}
    metrics: list[Delta] = []
    categories: list[Delta] = []
    for name in sorted(report_a.keys() | report_b.keys()):
        a, b = report_a.get(name), report_b.get(name)
        metrics += _metric_deltas(name, a, b)
        cats_a = a.categories if a else {}
        cats_b = b.categories if b else {}
        for cat in sorted(cats_a.keys() | cats_b.keys()):
            score_a = cats_a[cat].score if cat in cats_a else None
            score_b = cats_b[cat].score if cat in cats_b else None
            categories.append(_delta(name, cat, score_a, score_b))
    by_key_a = {r.key: r for r in records_a}
    by_key_b = {r.key: r for r in records_b}
    common = sorted(by_key_a.keys() & by_key_b.keys())
    flips = [_flip(by_key_a[key], by_key_b[key]) for key in common]
    flips = [f for f in flips if abs(f.b_score - f.a_score) > 1e-9]
    return Comparison(
        run_a=str(run_a),
        run_b=str(run_b),
        common_items=len(common),
        only_a=len(by_key_a.keys() - by_key_b.keys()),
        only_b=len(by_key_b.keys() - by_key_a.keys()),
        metrics=metrics,
        categories=categories,
        gained=[f for f in flips if f.b_score > f.a_score],
        lost=[f for f in flips if f.b_score < f.a_score],
    )


def _metric_deltas(
    benchmark: str, a: BenchmarkSummary | None, b: BenchmarkSummary | None
) -> list[Delta]:
    names = list(a.metrics if a else {}) + [
        n for n in (b.metrics if b else {}) if not a or n not in a.metrics
    ]
    deltas = [
        _delta(benchmark, n, a.metrics.get(n) if a else None, b.metrics.get(n) if b else None)
        for n in names
    ]
    for rate in ("parse_failure", "truncation", "conflict", "error"):
        value_a = getattr(a.rates, rate) if a else None
        value_b = getattr(b.rates, rate) if b else None
        deltas.append(_delta(benchmark, f"rate/{rate}", value_a, value_b))
    return deltas


def _flip(a: EvalRecord, b: EvalRecord) -> Flip:
    return Flip(
        benchmark=a.benchmark,
        id=a.id,
        category=a.category,
        gold=a.item.gold,
        a_score=a.score,
        b_score=b.score,
        a_answer=_answer(a),
        b_answer=_answer(b),
    )


def _signed(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:+.1f}"


def render_comparison(comparison: Comparison) -> str:
    """The comparison as Markdown."""
    c = comparison
    lines = [
        "# m2-tools eval comparison",
        "",
        f"- A: `{c.run_a}`",
        f"- B: `{c.run_b}`",
        f"- items in both: {c.common_items}; only in A: {c.only_a}; only in B: {c.only_b}",
        f"- flipped: {len(c.gained)} gained (wrong in A, right in B), {len(c.lost)} lost",
        "",
        "## Metrics (%)",
        "",
        "| benchmark | metric | A | B | B − A |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {d.benchmark} | {d.name} | {pct(d.a)} | {pct(d.b)} | {_signed(d.delta)} |"
        for d in c.metrics
    ]
    lines += ["", "## Categories (%)", "", "| benchmark | category | A | B | B − A |"]
    lines += ["| --- | --- | ---: | ---: | ---: |"]
    lines += [
        f"| {d.benchmark} | {d.name} | {pct(d.a)} | {pct(d.b)} | {_signed(d.delta)} |"
        for d in c.categories
    ]
    for title, flips in (("Gained", c.gained), ("Lost", c.lost)):
        lines += ["", f"## {title} items ({len(flips)})", ""]
        if not flips:
            lines.append("None.")
            continue
        lines += [
            "| benchmark | id | category | gold | A | B |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for f in flips[:_SHOWN_FLIPS]:
            lines.append(
                f"| {f.benchmark} | {f.id} | {f.category} | {_cell(f.gold)} "
                f"| {_cell(f.a_answer)} ({f.a_score:g}) | {_cell(f.b_answer)} ({f.b_score:g}) |"
            )
        if len(flips) > _SHOWN_FLIPS:
            lines.append(f"\n… and {len(flips) - _SHOWN_FLIPS} more in compare.json")
    return "\n".join(lines) + "\n"


def _cell(text: str | None) -> str:
    if text is None:
        return "–"
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= 40 else text[:39] + "…"
