"""Benchmark-level scores built from per-item records, by each benchmark's rule.

Every benchmark reports ``accuracy`` (the mean item score, failed calls count
0), per-category scores and the parse-failure, truncation, letter/value-conflict
and error rates. On top of that:

- DynaMath: ``worst_case`` (a seed counts only if all its variants are right;
  the reported number) and ``average``.
- WeMath: ``score_strict`` and ``score_loose`` = (N − 0.5·IG − RM − IK) / N
  over the N complete composite problems (N = 525 on testmini).
- MathVision/MathVerse: ``accuracy`` (|a−b| < 1e-6) and ``accuracy_official_2dp``.
- CV-Bench: per-task accuracy, ``accuracy`` (micro, "Avg."), per-source accuracy
  and ``combined`` = ½·((acc_ADE20K + acc_COCO)/2 + acc_Omni3D).
- VSI-Bench: eight task scores and ``overall``, their plain mean.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence

from pydantic import BaseModel, Field

from m2_tools.evaluation.records import EvalRecord
from m2_tools.evaluation.scorers import usable

__all__ = ["VSI_TASKS", "BenchmarkSummary", "CategoryScore", "Rates", "summarize"]

#: VSI-Bench question type → the task it is reported under (relative direction's
#: three levels are averaged into one task, as in the official evaluation).
VSI_TASKS: dict[str, str] = {
    "object_counting": "obj_count",
    "object_abs_distance": "abs_dist",
    "object_size_estimation": "obj_size",
    "room_size_estimation": "room_size",
    "object_rel_distance": "rel_dist",
    "object_rel_direction_easy": "rel_dir",
    "object_rel_direction_medium": "rel_dir",
    "object_rel_direction_hard": "rel_dir",
    "route_planning": "route_plan",
    "obj_appearance_order": "appr_order",
}
DYNAMATH_VARIANTS = 10


class CategoryScore(BaseModel):
    """Mean score of the items of one category."""

    n: int
    score: float


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


def _by(records: Iterable[EvalRecord], key: Callable[[EvalRecord], str]) -> dict[str, float]:
    groups: dict[str, list[float]] = defaultdict(list)
    for record in records:
        groups[key(record)].append(record.score)
    return {name: sum(scores) / len(scores) for name, scores in sorted(groups.items())}


def summarize(benchmark: str, records: Sequence[EvalRecord]) -> BenchmarkSummary:
    """Score one benchmark's records with its own rules."""
    categories: dict[str, list[float]] = defaultdict(list)
    for record in records:
        categories[record.category].append(record.score)
    summary = BenchmarkSummary(
        benchmark=benchmark,
        n=len(records),
        headline="accuracy",
        metrics={"accuracy": _mean(r.score for r in records)},
        categories={
            name: CategoryScore(n=len(scores), score=sum(scores) / len(scores))
            for name, scores in sorted(categories.items())
        },
        rates=_rates(records),
    )
    extra = _EXTRAS.get(benchmark)
    if extra is not None:
        extra(summary, records)
    return summary


def _mathvision(summary: BenchmarkSummary, records: Sequence[EvalRecord]) -> None:
    summary.metrics["accuracy_official_2dp"] = _mean(
        r.scores.get("official_2dp", r.score) for r in records
    )
    summary.notes.append(
        "accuracy: free-form answers match as equal strings or |a-b| < 1e-6 after symbolic "
        "evaluation; accuracy_official_2dp: equal after rounding to 2 decimals (official code)"
    )


def _dynamath(summary: BenchmarkSummary, records: Sequence[EvalRecord]) -> None:
    seeds: dict[str, list[float]] = defaultdict(list)
    for record in records:
        seeds[record.item.seed_id or record.id].append(record.score)
    summary.metrics["average"] = summary.metrics["accuracy"]
    summary.metrics["worst_case"] = _mean(float(all(s == 1 for s in v)) for v in seeds.values())
    summary.headline = "worst_case"
    summary.counts["seeds"] = len(seeds)
    incomplete = sum(len(v) < DYNAMATH_VARIANTS for v in seeds.values())
    summary.counts["incomplete_seeds"] = incomplete
    if incomplete:
        summary.notes.append(
            f"{incomplete} seed questions have fewer than {DYNAMATH_VARIANTS} variants in this "
            "run; their worst case is over the variants present"
        )


def _wemath(summary: BenchmarkSummary, records: Sequence[EvalRecord]) -> None:
    groups: dict[tuple[str, int], dict[str, bool]] = defaultdict(dict)
    for record in records:
        item = record.item
        if item.composite_id and item.step_role and item.num_steps:
            groups[(item.composite_id, item.num_steps)][item.step_role] = record.score == 1
    counts = dict.fromkeys(("IK", "IG", "CM", "RM_strict", "RM_loose", "CM_loose"), 0)
    complete = 0
    for (_, steps), roles in groups.items():
        wanted = [f"step_{i}" for i in range(1, steps + 1)]
        if "composite" not in roles or any(step not in roles for step in wanted):
            continue
        complete += 1
        right = [roles[step] for step in wanted]
        composite = roles["composite"]
        if all(right):
            counts["CM" if composite else "IG"] += 1
        elif not composite:
            counts["IK"] += 1
        else:
            counts["RM_strict"] += 1
            counts["RM_loose" if not any(right) else "CM_loose"] += 1
    counts["CM_loose"] += counts["CM"]
    summary.counts.update(counts, composites=complete, incomplete=len(groups) - complete)
    n = complete
    base = n - 0.5 * counts["IG"] - counts["IK"]
    summary.metrics["score_strict"] = (base - counts["RM_strict"]) / n if n else None
    summary.metrics["score_loose"] = (base - counts["RM_loose"]) / n if n else None
    summary.headline = "score_strict"
    summary.notes.append(
        f"score = (N - 0.5*IG - RM - IK) / N over N = {n} complete composite problems "
        "(N = 525 on the full testmini); RM strict: any step wrong, composite right; "
        "RM loose: all steps wrong, composite right"
    )


def _cvbench(summary: BenchmarkSummary, records: Sequence[EvalRecord]) -> None:
    for task, score in _by(records, lambda r: r.category).items():
        summary.metrics[f"task/{task}"] = score
    sources = _by((r for r in records if r.item.source), lambda r: r.item.source or "")
    for source, score in sources.items():
        summary.metrics[f"acc_{source}"] = score
    parts = [sources.get(name) for name in ("ADE20K", "COCO", "Omni3D")]
    if all(part is not None for part in parts):
        ade, coco, omni = (float(part or 0.0) for part in parts)
        summary.metrics["combined"] = 0.5 * ((ade + coco) / 2 + omni)
        summary.headline = "combined"
    else:
        summary.metrics["combined"] = None
        summary.notes.append("combined score needs ADE20K, COCO and Omni3D items")
    summary.notes.append("accuracy is the micro average over all items (M2's 'Avg.')")


def _vsibench(summary: BenchmarkSummary, records: Sequence[EvalRecord]) -> None:
    by_type = _by(records, lambda r: r.item.question_type or r.category)
    tasks: dict[str, list[float]] = defaultdict(list)
    for question_type, score in by_type.items():
        tasks[VSI_TASKS.get(question_type, question_type)].append(score)
    task_scores = {task: sum(v) / len(v) for task, v in tasks.items()}
    for task, score in sorted(task_scores.items()):
        summary.metrics[f"task/{task}"] = score
    summary.metrics["overall"] = _mean(task_scores.values())
    summary.headline = "overall"
    summary.notes.append(
        "numeric tasks use MRA over theta = 0.50..0.95; rel_dir averages its three levels; "
        f"overall is the plain mean of the {len(task_scores)} task scores present (8 in full)"
    )


_EXTRAS: dict[str, Callable[[BenchmarkSummary, Sequence[EvalRecord]], None]] = {
    "mathvision": _mathvision,
    "mathverse": _mathvision,
    "dynamath": _dynamath,
    "wemath": _wemath,
    "cvbench": _cvbench,
    "vsibench": _vsibench,
}
