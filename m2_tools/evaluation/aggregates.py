"""Benchmark-level scores built from per-item records, by each benchmark's rule.

Every benchmark reports ``accuracy`` (the mean item score over the items a rule
decides; failed calls count 0), per-category scores, the chance level of its
multiple-choice categories, and the parse-failure, truncation, letter/value-conflict
and error rates. Items the official code leaves to a GPT judge (MathVerse answers
that are not equal to the gold) count in no accuracy: their number is
``counts["judge"]`` and their ids are ``judge_items``. Each benchmark's own metrics
(DynaMath's worst case, WeMath's four dimensions, CV-Bench's combined score,
VSI-Bench's overall, MathVerse's versions) come from
:mod:`m2_tools.evaluation._benchmark_metrics`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from pydantic import BaseModel, Field

from m2_tools.evaluation._benchmark_metrics import EXTRAS, VSI_TASKS
from m2_tools.evaluation.records import EvalRecord
from m2_tools.evaluation.scorers import usable

__all__ = ["VSI_TASKS", "BenchmarkSummary", "CategoryScore", "Rates", "summarize"]


class CategoryScore(BaseModel):
    """Mean score of the decided items of one category."""

    n: int = Field(..., description="Items scored (judge items excluded).")
    score: float | None
    judge: int = Field(default=0, description="Items left to a GPT judge.")
    chance: float | None = Field(
        default=None, description="Expected score of a uniform guess, for multiple choice."
    )


class Rates(BaseModel):
    """How often the pipeline, rather than the model's reasoning, decided the outcome.

    Rates are over items whose call succeeded, except ``error`` (over all items).
    """

    parse_failure: float = Field(..., description="No usable choice/value/answer for the type.")
    truncation: float = Field(..., description="Output cut off (open tags or token limit).")
    conflict: float = Field(..., description="The parser flagged a letter/value conflict.")
    error: float = Field(..., description="The call failed; the item scored 0.")


class BenchmarkSummary(BaseModel):
    """The scores of one benchmark in one run."""

    benchmark: str
    n: int
    headline: str = Field(..., description="Name of the metric the benchmark reports.")
    metrics: dict[str, float | None]
    counts: dict[str, int] = Field(default_factory=dict)
    categories: dict[str, CategoryScore]
    rates: Rates
    judge_items: list[str] = Field(
        default_factory=list, description="Ids of the items left to a GPT judge."
    )
    notes: list[str] = Field(default_factory=list)

    @property
    def headline_value(self) -> float | None:
        """The value of the headline metric."""
        return self.metrics.get(self.headline)


def _mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return sum(values) / len(values) if values else None


def _rate(flags: Sequence[bool]) -> float:
    return sum(flags) / len(flags) if flags else 0.0


def _rates(records: Sequence[EvalRecord]) -> Rates:
    answered = [(r.item, r.prediction) for r in records if r.prediction is not None]
    return Rates(
        parse_failure=_rate([not usable(item, pred) for item, pred in answered]),
        truncation=_rate([pred.truncated for _, pred in answered]),
        conflict=_rate([pred.conflict for _, pred in answered]),
        error=_rate([r.error is not None for r in records]),
    )


def _chance(records: Sequence[EvalRecord]) -> float | None:
    options = [len(r.item.options or []) for r in records]
    single = all(r.item.answer_type == "multiple_choice" for r in records)
    if not records or not single or min(options) < 2:
        return None
    return sum(1 / count for count in options) / len(options)


def _categories(records: Sequence[EvalRecord]) -> dict[str, CategoryScore]:
    groups: dict[str, list[EvalRecord]] = defaultdict(list)
    for record in records:
        groups[record.category].append(record)
    return {
        name: CategoryScore(
            n=sum(not r.judge for r in group),
            score=_mean(r.score for r in group if not r.judge),
            judge=sum(r.judge for r in group),
            chance=_chance(group),
        )
        for name, group in sorted(groups.items())
    }


def summarize(benchmark: str, records: Sequence[EvalRecord]) -> BenchmarkSummary:
    """Score one benchmark's records with its own rules."""
    judged = [r for r in records if r.judge]
    summary = BenchmarkSummary(
        benchmark=benchmark,
        n=len(records),
        headline="accuracy",
        metrics={"accuracy": _mean(r.score for r in records if not r.judge)},
        categories=_categories(records),
        rates=_rates(records),
        judge_items=[r.id for r in judged],
    )
    if judged:
        summary.counts["judge"] = len(judged)
        summary.counts["decided"] = len(records) - len(judged)
        summary.notes.append(
            f"{len(judged)} items are left to a GPT judge by the official code (their "
            "answers are not equal to the gold); they are listed in judge_items and count "
            "in no accuracy"
        )
    extra = EXTRAS.get(benchmark)
    if extra is not None:
        extra(summary, records)
    return summary
