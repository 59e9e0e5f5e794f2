"""Benchmark-level scores from records; each expectation follows the official aggregate."""

from __future__ import annotations

import pytest

from m2_tools.evaluation import Prediction, summarize
from m2_tools.evaluation.records import ErrorInfo


def test_dynamath_reports_worst_case_over_the_variants_and_the_average(item_of, record_of) -> None:
    """VLMEvalKit Dynamath.evaluate: Worst Case (every variant of a seed right) and Average."""
    records = []
    for seed, wrong_variant in (("s1", None), ("s2", 7)):
        for variant in range(1, 11):
            item = item_of(
                benchmark="dynamath", id=f"{seed}-v{variant}", seed_id=seed, variant=variant
            )
            records.append(record_of(item, 0.0 if variant == wrong_variant else 1.0))

    summary = summarize("dynamath", records)

    assert summary.headline == "worst_case"
    assert summary.metrics["worst_case"] == pytest.approx(0.5)
    assert summary.metrics["average"] == pytest.approx(19 / 20)
    assert summary.counts == {"seeds": 2, "incomplete_seeds": 0}


def test_dynamath_worst_case_needs_no_variant_1(item_of, record_of) -> None:
    """VLMEvalKit keys seeds on variant 1's row and crashes without it; the rule it means
    takes the worst case over the variants present."""
    records = [
        record_of(item_of(benchmark="dynamath", id=f"s1-v{v}", seed_id="s1", variant=v), 1.0)
        for v in range(2, 11)
    ]

    summary = summarize("dynamath", records)

    assert summary.metrics["worst_case"] == 1.0
    assert summary.counts["incomplete_seeds"] == 1
    assert summary.notes


def _wemath_group(item_of, record_of, gid: str, steps: list[bool], composite: bool | None):
    n = len(steps)
    records = [
        record_of(
            item_of(
                benchmark="wemath",
                id=f"{gid}@{n}steps_{i}",
                composite_id=gid,
                step_role=f"step_{i}",
                num_steps=n,
                category="one-step",
            ),
            float(right),
        )
        for i, right in enumerate(steps, start=1)
    ]
    if composite is not None:
        item = item_of(
            benchmark="wemath",
            id=f"{gid}@{n}steps_multi",
            composite_id=gid,
            step_role="composite",
            num_steps=n,
            category="two-step" if n == 2 else "three-step",
        )
        records.append(record_of(item, float(composite)))
    return records


def test_wemath_four_dimensions_over_the_composites_present(item_of, record_of) -> None:
    """four_dimensional_metrics.py: calculate_metrics and the final score, with N the
    number of complete composite problems instead of the hard-coded 525."""
    groups = [
        ("g1", [True, True], True),  # CM strict and loose
        ("g2", [True, True], False),  # IG
        ("g3", [True, False], False),  # IK
        ("g4", [False, False], True),  # RM strict and loose
        ("g5", [True, False, True], True),  # RM strict, CM loose
        ("g6", [True, True], None),  # no composite: not counted
    ]
    records = [r for g in groups for r in _wemath_group(item_of, record_of, *g)]

    summary = summarize("wemath", records)

    assert summary.counts == {
        "IK": 1,
        "IG": 1,
        "CM_strict": 1,
        "CM_loose": 2,
        "RM_strict": 2,
        "RM_loose": 1,
        "composites": 5,
        "incomplete": 1,
    }
    assert summary.headline == "score_strict"
    assert summary.metrics["score_strict"] == pytest.approx((5 - 0.5 - 2 - 1) / 5)
    assert summary.metrics["score_loose"] == pytest.approx((5 - 0.5 - 1 - 1) / 5)
    assert summary.metrics["rate/RM_strict"] == pytest.approx(2 / 3)  # RM / (CM + RM)
    assert summary.metrics["rate/RM_loose"] == pytest.approx(1 / 3)


def _cv(item_of, record_of, idx: int, split: str, source: str, task: str, score: float):
    item = item_of(
        benchmark="cvbench",
        id=f"{split}-{idx}",
        category=task,
        source=source,
        options=["a", "b"],
        meta={"type": split},
    )
    return record_of(item, score)


def test_cvbench_combines_the_2d_source_mean_and_the_3d_accuracy(item_of, record_of) -> None:
    """VLMEvalKit CVBench.report_accuracy (2D: the mean over sources) and report_acc (3D);
    Cambrian's combined score is their mean."""
    rows = [
        (0, "2D", "ADE20K", "Count", 1.0),
        (1, "2D", "ADE20K", "Relation", 0.0),
        (2, "2D", "COCO", "Count", 1.0),
        (3, "2D", "COCO", "Relation", 1.0),
        (4, "2D", "COCO", "Count", 1.0),
        (5, "3D", "Omni3D", "Depth", 1.0),
        (6, "3D", "Omni3D", "Distance", 0.0),
    ]
    records = [_cv(item_of, record_of, *row) for row in rows]

    summary = summarize("cvbench", records)

    assert summary.headline == "combined"
    assert summary.metrics["accuracy_2d"] == pytest.approx((0.5 + 1.0) / 2)
    assert summary.metrics["accuracy_3d"] == pytest.approx(0.5)
    assert summary.metrics["combined"] == pytest.approx((0.75 + 0.5) / 2)
    assert summary.metrics["accuracy"] == pytest.approx(5 / 7)
    assert summary.metrics["task/Count"] == pytest.approx(1.0)
    assert summary.metrics["source/ADE20K"] == pytest.approx(0.5)
    assert summary.categories["Count"].chance == pytest.approx(0.5)


def test_cvbench_with_one_file_reports_that_split_only(item_of, record_of) -> None:
    records = [_cv(item_of, record_of, 0, "2D", "COCO", "Count", 1.0)]

    summary = summarize("cvbench", records)

    assert summary.headline == "accuracy_2d"
    assert "combined" not in summary.metrics


def _vsi(item_of, record_of, kind: str, score: float, index: int = 0):
    item = item_of(benchmark="vsibench", id=f"{kind}-{index}", category=kind, question_type=kind)
    return record_of(item, score)


def test_vsibench_overall_is_the_mean_of_tasks_with_direction_levels_averaged(
    item_of, record_of
) -> None:
    """VLMEvalKit VsiBench._aggregate: one score per question type, the three direction
    levels averaged into one, overall the plain mean."""
    records = [
        _vsi(item_of, record_of, "object_counting", 0.6),
        _vsi(item_of, record_of, "object_counting", 0.8, 1),
        _vsi(item_of, record_of, "object_rel_direction_easy", 1.0),
        _vsi(item_of, record_of, "object_rel_direction_medium", 0.0),
        _vsi(item_of, record_of, "object_rel_direction_hard", 0.5),
        _vsi(item_of, record_of, "route_planning", 0.0),
    ]

    summary = summarize("vsibench", records)

    assert summary.headline == "overall"
    assert summary.metrics["task/obj_count"] == pytest.approx(0.7)
    assert summary.metrics["task/rel_dir"] == pytest.approx(0.5)
    assert summary.metrics["overall"] == pytest.approx((0.7 + 0.5 + 0.0) / 3)


def test_vsibench_averages_the_direction_levels_present(item_of, record_of) -> None:
    """The official scorer crashes when a level is missing; the rule it means averages
    the levels there are."""
    records = [
        _vsi(item_of, record_of, "object_rel_direction_easy", 1.0),
        _vsi(item_of, record_of, "object_rel_direction_hard", 0.0),
    ]

    summary = summarize("vsibench", records)

    assert summary.metrics["task/rel_dir"] == pytest.approx(0.5)
    assert summary.metrics["overall"] == pytest.approx(0.5)
    assert any("2 relative-direction levels" in note for note in summary.notes)


def test_mathverse_reports_each_version_with_vision_only_first(item_of, record_of) -> None:
    """score_answer_s2.py: accuracy per problem_version (and overall)."""
    scores = {"Text Dominant": 1.0, "Vision Intensive": 0.0, "Vision Only": 1.0}
    records = [
        record_of(item_of(benchmark="mathverse", id=str(i), category=version), score)
        for i, (version, score) in enumerate(scores.items())
    ]

    summary = summarize("mathverse", records)

    versions = [name for name in summary.metrics if name.startswith("version/")]
    assert versions == ["version/Vision Only", "version/Vision Intensive", "version/Text Dominant"]
    assert summary.headline == "version/Vision Only"
    assert summary.headline_value == 1.0
    assert summary.metrics["accuracy"] == pytest.approx(2 / 3)


def test_items_left_to_a_judge_are_listed_and_count_in_no_accuracy(item_of, record_of) -> None:
    records = [
        record_of(item_of(benchmark="mathverse", id="a", category="Vision Only"), 1.0),
        record_of(item_of(benchmark="mathverse", id="b", category="Vision Only"), 0.0, judge=True),
        record_of(item_of(benchmark="mathverse", id="c", category="Text Lite"), 0.0),
    ]

    summary = summarize("mathverse", records)

    assert summary.judge_items == ["b"]
    assert summary.counts["judge"] == 1
    assert summary.metrics["version/Vision Only"] == 1.0  # b is not counted as wrong
    assert summary.metrics["accuracy"] == pytest.approx(1 / 2)
    assert summary.metrics["accuracy_judge_wrong"] == pytest.approx(1 / 3)
    assert summary.metrics["accuracy_judge_right"] == pytest.approx(2 / 3)
    assert (summary.categories["Vision Only"].n, summary.categories["Vision Only"].judge) == (1, 1)


def test_rates_count_parse_failures_truncations_conflicts_and_errors(item_of, record_of) -> None:
    item = item_of(options=["a", "b"])
    records = [
        record_of(item, 1.0, prediction=Prediction(choice="A")),
        record_of(item, 0.0, prediction=Prediction(answer="hmm")),  # parse failure
        record_of(
            item,
            0.0,
            prediction=Prediction(status="truncated", finish_reason="length"),
            status="truncated",
        ),
        record_of(item, 1.0, prediction=Prediction(choice="B", flags=["letter_value_conflict"])),
        record_of(
            item, 0.0, prediction=None, status="error", error=ErrorInfo(code="timeout", message="")
        ),
    ]

    rates = summarize("synthetic", records).rates

    assert rates.parse_failure == pytest.approx(2 / 4)  # over the 4 answered items
    assert rates.truncation == pytest.approx(1 / 4)
    assert rates.conflict == pytest.approx(1 / 4)
    assert rates.error == pytest.approx(1 / 5)


def test_accuracy_counts_failed_calls_as_zero(item_of, record_of) -> None:
    item = item_of()
    failed = record_of(
        item, 0.0, prediction=None, status="error", error=ErrorInfo(code="internal", message="")
    )

    summary = summarize("synthetic", [record_of(item, 1.0), failed])

    assert summary.metrics["accuracy"] == pytest.approx(0.5)
    assert summary.categories["all"].n == 2


def test_chance_is_given_only_for_multiple_choice_categories(item_of, record_of) -> None:
    records = [
        record_of(item_of(id="a", category="mc", options=["p", "q"]), 1.0),
        record_of(item_of(id="b", category="mc", options=["p", "q", "r", "s"]), 1.0),
        record_of(item_of(id="c", category="free", gold="3", answer_type="integer"), 1.0),
    ]

    categories = summarize("synthetic", records).categories

    assert categories["mc"].chance == pytest.approx((1 / 2 + 1 / 4) / 2)
    assert categories["free"].chance is None
