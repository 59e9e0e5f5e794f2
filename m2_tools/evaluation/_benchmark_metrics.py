"""Each benchmark's own metrics on top of the common summary (see ``docs/eval.md``).

- MathVerse: accuracy per problem version (``version/<name>``), Vision Only first
  and the headline when present (MathVerse's ``score_answer_s2.py``).
- DynaMath: ``worst_case`` (a seed counts only if all its variants present are
  right) and ``average`` (VLMEvalKit's DynaMath, without its variant-1 crash).
- WeMath: IK, IG, CM and RM, and ``score_strict``/``score_loose`` =
  (N − 0.5·IG − RM − IK) / N over the N complete composite problems
  (``four_dimensional_metrics.py``, which fixes N at 525).
- CV-Bench: ``accuracy_2d`` (the mean of the 2D sources' accuracies),
  ``accuracy_3d``, and ``combined`` = their mean (Cambrian's
  ½·((ADE20K + COCO)/2 + Omni3D)); per task and per source (VLMEvalKit's CVBench).
- VSI-Bench: one score per task, the relative-direction levels averaged, and
  ``overall``, the plain mean of the tasks (VLMEvalKit's VsiBench).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from m2_tools.evaluation.records import EvalRecord

if TYPE_CHECKING:
    from m2_tools.evaluation.aggregates import BenchmarkSummary

__all__ = ["DYNAMATH_VARIANTS", "EXTRAS", "MATHVERSE_VERSIONS", "VSI_TASKS"]

#: VSI-Bench question type → the task it is reported under.
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
#: MathVerse's versions in the order a report lists them.
MATHVERSE_VERSIONS = (
    "Vision Only",
    "Vision Dominant",
    "Vision Intensive",
    "Text Lite",
    "Text Dominant",
    "Text Only",
)
DYNAMATH_VARIANTS = 10


def _mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return sum(values) / len(values) if values else None


def _by(records: Iterable[EvalRecord], key: Callable[[EvalRecord], str]) -> dict[str, float]:
    groups: dict[str, list[float]] = defaultdict(list)
    for record in records:
        if not record.judge:
            groups[key(record)].append(record.score)
    return {name: sum(scores) / len(scores) for name, scores in sorted(groups.items())}


def _mathverse(summary: BenchmarkSummary, records: Sequence[EvalRecord]) -> None:
    by_version = _by(records, lambda r: r.category)
    present = sorted({r.category for r in records})
    ordered = [v for v in MATHVERSE_VERSIONS if v in present]
    ordered += [v for v in present if v not in MATHVERSE_VERSIONS]
    for version in ordered:
        summary.metrics[f"version/{version}"] = by_version.get(version)  # None: all judged
    rank = {version: i for i, version in enumerate(MATHVERSE_VERSIONS)}
    summary.categories = dict(
        sorted(summary.categories.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0]))
    )
    if "Vision Only" in present:
        summary.headline = "version/Vision Only"
    judged = summary.counts.get("judge", 0)
    if judged:
        decided = [r.score for r in records if not r.judge]
        summary.metrics["accuracy_judge_wrong"] = sum(decided) / len(records)
        summary.metrics["accuracy_judge_right"] = (sum(decided) + judged) / len(records)
    summary.notes.append(
        "an answer equal to the gold is right; any other goes to the official GPT judge. "
        "accuracy_judge_wrong/right bound the accuracy whatever the judge decides"
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


def _wemath_counts(records: Sequence[EvalRecord]) -> tuple[dict[str, int], int, int]:
    groups: dict[tuple[str, int], dict[str, bool]] = defaultdict(dict)
    for record in records:
        item = record.item
        if item.composite_id and item.step_role and item.num_steps:
            groups[(item.composite_id, item.num_steps)][item.step_role] = record.score == 1
    counts = dict.fromkeys(("IK", "IG", "CM_strict", "CM_loose", "RM_strict", "RM_loose"), 0)
    complete = 0
    for (_, steps), roles in groups.items():
        wanted = [f"step_{i}" for i in range(1, steps + 1)]
        if "composite" not in roles or any(step not in roles for step in wanted):
            continue
        complete += 1
        right, composite = [roles[step] for step in wanted], roles["composite"]
        if not composite:
            counts["IG" if all(right) else "IK"] += 1
            continue
        counts["CM_strict"] += all(right)
        counts["CM_loose"] += any(right)
        counts["RM_strict"] += not all(right)
        counts["RM_loose"] += not any(right)
    return counts, complete, len(groups) - complete


def _wemath(summary: BenchmarkSummary, records: Sequence[EvalRecord]) -> None:
    counts, n, incomplete = _wemath_counts(records)
    summary.counts.update(counts, composites=n, incomplete=incomplete)
    base = n - 0.5 * counts["IG"] - counts["IK"]
    for variant in ("strict", "loose"):
        rm, cm = counts[f"RM_{variant}"], counts[f"CM_{variant}"]
        summary.metrics[f"score_{variant}"] = (base - rm) / n if n else None
        summary.metrics[f"rate/RM_{variant}"] = rm / (cm + rm) if cm + rm else None
        summary.metrics[f"rate/CM_{variant}"] = cm / n if n else None
    summary.metrics["rate/IK"] = counts["IK"] / n if n else None
    summary.metrics["rate/IG"] = counts["IG"] / n if n else None
    summary.headline = "score_strict"
    summary.notes.append(
        f"score = (N - 0.5*IG - RM - IK) / N over the N = {n} complete composite problems "
        "(the official script fixes N = 525, the full testmini)"
    )


def _split(record: EvalRecord) -> str:
    split = record.item.meta.get("type")
    return str(split) if split else ("3D" if record.item.source == "Omni3D" else "2D")


def _cvbench(summary: BenchmarkSummary, records: Sequence[EvalRecord]) -> None:
    for task, score in _by(records, lambda r: r.category).items():
        summary.metrics[f"task/{task}"] = score
    for source, score in _by(
        (r for r in records if r.item.source), lambda r: r.item.source or ""
    ).items():
        summary.metrics[f"source/{source}"] = score
    two_d = _by((r for r in records if _split(r) == "2D"), lambda r: r.item.source or "all")
    three_d = [r.score for r in records if _split(r) == "3D"]
    summary.metrics["accuracy_2d"] = _mean(two_d.values())
    summary.metrics["accuracy_3d"] = _mean(three_d)
    parts = [summary.metrics["accuracy_2d"], summary.metrics["accuracy_3d"]]
    if all(part is not None for part in parts):
        summary.metrics["combined"] = (float(parts[0] or 0) + float(parts[1] or 0)) / 2
        summary.headline = "combined"
    else:
        summary.headline = "accuracy_2d" if parts[0] is not None else "accuracy_3d"
        summary.notes.append("combined needs both test_2d and test_3d items")
    summary.notes.append(
        "accuracy_2d is the mean of the 2D sources' accuracies; accuracy is the micro "
        "average over all items (M2's 'Avg.')"
    )


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
    levels = sum(t.startswith("object_rel_direction_") for t in by_type)
    if 0 < levels < 3:
        summary.notes.append(
            f"rel_dir averages the {levels} relative-direction levels present (of 3)"
        )
    summary.notes.append(
        "numeric tasks use MRA over theta = 0.50..0.95; rel_dir averages its levels; "
        f"overall is the plain mean of the {len(task_scores)} task scores present (8 in full)"
    )


EXTRAS: dict[str, Callable[[BenchmarkSummary, Sequence[EvalRecord]], None]] = {
    "mathverse": _mathverse,
    "dynamath": _dynamath,
    "wemath": _wemath,
    "cvbench": _cvbench,
    "vsibench": _vsibench,
}
