"""Reports of a run directory: ``report.json``, ``report.md`` and ``scores.png``.

A report is rebuilt from ``records.jsonl`` and ``run.json`` alone, so it is the
same whether the run finished in one go or was resumed several times.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from m2_tools.evaluation.aggregates import BenchmarkSummary, summarize
from m2_tools.evaluation.chart import write_chart
from m2_tools.evaluation.records import EvalRecord, load_records

__all__ = ["Report", "Throughput", "build_report", "load_run", "render_markdown", "write_report"]

logger = logging.getLogger(__name__)

_SHOWN_JUDGE = 20


class Throughput(BaseModel):
    """Speed over the run's sessions (time from each session's start to its last item)."""

    items: int
    wall_s: float
    sessions: int
    completion_tokens: int
    items_per_s: float | None = Field(default=None, description="Items finished per second.")
    tokens_per_s: float | None = Field(default=None, description="Generated tokens per second.")


class Report(BaseModel):
    """Everything ``report.json`` holds."""

    run: dict[str, Any]
    n: int
    benchmarks: list[BenchmarkSummary]
    throughput: Throughput


def load_run(run_dir: Path) -> tuple[list[EvalRecord], dict[str, Any]]:
    """The records and the ``run.json`` facts of a run directory."""
    info_path = run_dir / "run.json"
    info = json.loads(info_path.read_text("utf-8")) if info_path.exists() else {}
    return load_records(run_dir / "records.jsonl"), info


def build_report(records: Sequence[EvalRecord], run_info: dict[str, Any]) -> Report:
    """Summarise ``records`` benchmark by benchmark, plus throughput."""
    by_benchmark: dict[str, list[EvalRecord]] = defaultdict(list)
    for record in records:
        by_benchmark[record.benchmark].append(record)
    return Report(
        run=run_info,
        n=len(records),
        benchmarks=[summarize(name, group) for name, group in sorted(by_benchmark.items())],
        throughput=_throughput(records),
    )


def _throughput(records: Sequence[EvalRecord]) -> Throughput:
    sessions: dict[float, list[EvalRecord]] = defaultdict(list)
    for record in records:
        sessions[record.session].append(record)
    wall = sum(max(r.finished_at for r in group) - start for start, group in sessions.items())
    tokens = sum((r.usage or {}).get("completion_tokens", 0) for r in records)
    return Throughput(
        items=len(records),
        wall_s=round(wall, 3),
        sessions=len(sessions),
        completion_tokens=tokens,
        items_per_s=len(records) / wall if wall > 0 else None,
        tokens_per_s=tokens / wall if wall > 0 else None,
    )


def write_report(run_dir: Path, *, chart: bool = True) -> Report:
    """Write ``report.json``, ``report.md`` and (when matplotlib is there) ``scores.png``."""
    records, info = load_run(run_dir)
    report = build_report(records, info)
    (run_dir / "report.json").write_text(report.model_dump_json(indent=2) + "\n", "utf-8")
    has_chart = False
    if chart:
        created = str(info.get("created") or "")
        has_chart = write_chart(
            report.benchmarks,
            run_dir / "scores.png",
            model=info.get("model"),
            date=created[:10] or None,
        )
    markdown = render_markdown(report, chart="scores.png" if has_chart else None)
    (run_dir / "report.md").write_text(markdown, "utf-8")
    return report


def pct(value: float | None) -> str:
    """A fraction as a percentage with one decimal, or an en dash."""
    return "–" if value is None else f"{100 * value:.1f}"


def _rate(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def render_markdown(report: Report, *, chart: str | None = None) -> str:
    """The human-readable report."""
    run, speed = report.run, report.throughput
    lines = ["# m2-tools eval report", ""]
    for key in ("model", "items_file", "samples", "max_new_tokens", "created"):
        if run.get(key) is not None:
            lines.append(f"- {key.replace('_', ' ')}: `{run[key]}`")
    lines.append(
        f"- items recorded: {report.n}; throughput: {_num(speed.items_per_s, 3)} items/s, "
        f"{_num(speed.tokens_per_s, 1)} tokens/s ({speed.completion_tokens} tokens in "
        f"{speed.wall_s:.1f} s over {speed.sessions} session(s))"
    )
    lines += ["", "## Summary", ""]
    lines += [
        "| benchmark | n | metric | score (%) | judge | parse failures | truncated | conflicts "
        "| errors |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for bench in report.benchmarks:
        r = bench.rates
        lines.append(
            f"| {bench.benchmark} | {bench.n} | {bench.headline} | {pct(bench.headline_value)} "
            f"| {bench.counts.get('judge', 0)} | {_rate(r.parse_failure)} | {_rate(r.truncation)} "
            f"| {_rate(r.conflict)} | {_rate(r.error)} |"
        )
    for bench in report.benchmarks:
        lines += _benchmark_section(bench)
    if chart:
        lines += ["", f"![per-category scores]({chart})"]
    return "\n".join(lines) + "\n"


def _benchmark_section(bench: BenchmarkSummary) -> list[str]:
    lines = ["", f"## {bench.benchmark}", "", "| metric | value (%) |", "| --- | ---: |"]
    lines += [f"| {name} | {pct(value)} |" for name, value in bench.metrics.items()]
    if bench.counts:
        lines += ["", "Counts: " + ", ".join(f"{k} {v}" for k, v in bench.counts.items())]
    lines += ["", "| category | n | score (%) | judge | chance (%) |"]
    lines += ["| --- | ---: | ---: | ---: | ---: |"]
    lines += [
        f"| {name} | {c.n} | {pct(c.score)} | {c.judge} | {pct(c.chance)} |"
        for name, c in bench.categories.items()
    ]
    if bench.judge_items:
        shown = ", ".join(f"`{item}`" for item in bench.judge_items[:_SHOWN_JUDGE])
        more = len(bench.judge_items) - _SHOWN_JUDGE
        lines += ["", f"Left to a GPT judge: {shown}" + (f" and {more} more" if more > 0 else "")]
    lines += [f"\n_{note}_" for note in bench.notes]
    return lines


def _num(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"
