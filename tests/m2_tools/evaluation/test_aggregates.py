"""Benchmark-level scores from records, against hand-computed values."""

from __future__ import annotations

import pytest

from m2_tools.evaluation import Prediction, summarize
from m2_tools.evaluation.records import ErrorInfo


def test_dynamath_reports_worst_case_over_ten_variants_and_the_average(item_of, record_of) -> None:
    records = []
    for seed, wrong_variant in (("s1", None), ("s2", 7)):
        for variant in range(1, 11):
            item = item_of(
                benchmark="dynamath", id=f"{seed}-v{variant}", seed_id=seed, variant=variant
            )
            records.append(record_of(item, 0.0 if variant == wrong_variant else 1.0))

    summary = summarize("dynamath", records)

    assert summary.headline == "worst_case"
    assert summary.metrics["worst_case"] == pytest.approx(0.5)  # s1 all right, s2 one wrong
    assert summary.metrics["average"] == pytest.approx(19 / 20)
    assert summary.counts == {"seeds": 2, "incomplete_seeds": 0}


def test_dynamath_flags_seeds_with_missing_variants(item_of, record_of) -> None:
    item = item_of(benchmark="dynamath", id="s1-v1", seed_id="s1", variant=1)

    summary = summarize("dynamath", [record_of(item, 1.0)])

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


def test_wemath_strict_and_loose_scores_follow_the_four_dimensions(item_of, record_of) -> None:
    groups = [
        ("g1", [True, True], True),  # CM
        ("g2", [True, True], False),  # IG
        ("g3", [True, False], False),  # IK
        ("g4", [True, False], True),  # RM strict; loose: CM
        ("g5", [False, False], True),  # RM strict and loose
        ("g6", [False, False, False], False),  # IK (three steps)
        ("g7", [True, True], None),  # composite missing: not counted
    ]
    records = [r for g in groups for r in _wemath_group(item_of, record_of, *g)]

    summary = summarize("wemath", records)

    # N = 6, IG = 1, IK = 2, RM strict = 2, RM loose = 1.
    assert summary.metrics["score_strict"] == pytest.approx((6 - 0.5 * 1 - 2 - 2) / 6)
    assert summary.metrics["score_loose"] == pytest.approx((6 - 0.5 * 1 - 1 - 2) / 6)
    assert summary.headline == "score_strict"
    assert summary.counts == {
        "IK": 2,
        "IG": 1,
        "CM": 1,
        "RM_strict": 2,
        "RM_loose": 1,
        "CM_loose": 2,
        "composites": 6,
        "incomplete": 1,
    }
    assert set(summary.categories) == {"one-step", "two-step", "three-step"}


def test_cvbench_reports_tasks_micro_average_and_official_combined(item_of, record_of) -> None:
    plan = [  # (source, task, right)
        ("ADE20K", "Count", True),
        ("ADE20K", "Count", False),
        ("ADE20K", "Relation", False),
        ("ADE20K", "Relation", False),
        ("COCO", "Count", True),
        ("COCO", "Relation", True),
        ("Omni3D", "Depth", True),
        ("Omni3D", "Distance", False),
    ]
    records = [
        record_of(
            item_of(benchmark="cvbench", id=str(i), category=task, source=source), float(right)
        )
        for i, (source, task, right) in enumerate(plan)
    ]

    summary = summarize("cvbench", records)
    metrics = summary.metrics

    assert metrics["acc_ADE20K"] == pytest.approx(0.25)
    assert metrics["acc_COCO"] == pytest.approx(1.0)
    assert metrics["acc_Omni3D"] == pytest.approx(0.5)
    assert metrics["combined"] == pytest.approx(0.5 * ((0.25 + 1.0) / 2 + 0.5))  # 0.5625
    assert metrics["accuracy"] == pytest.approx(4 / 8)
    assert metrics["task/Count"] == pytest.approx(2 / 3)
    assert metrics["task/Relation"] == pytest.approx(1 / 3)
    assert metrics["task/Depth"] == 1.0 and metrics["task/Distance"] == 0.0
    assert summary.headline == "combined"


def test_cvbench_without_every_source_has_no_combined_score(item_of, record_of) -> None:
    item = item_of(benchmark="cvbench", category="Count", source="COCO")

    summary = summarize("cvbench", [record_of(item, 1.0)])

    assert summary.metrics["combined"] is None
    assert summary.headline == "accuracy"


def test_vsibench_overall_is_the_plain_mean_of_task_scores(item_of, record_of) -> None:
    plan = [  # (question type, score)
        ("object_counting", 0.6),
        ("object_rel_direction_easy", 1.0),
        ("object_rel_direction_medium", 0.0),
        ("object_rel_direction_hard", 1.0),
        ("object_rel_direction_hard", 0.0),
        ("route_planning", 1.0),
    ]
    records = [
        record_of(
            item_of(benchmark="vsibench", id=str(i), category=kind, question_type=kind), score
        )
        for i, (kind, score) in enumerate(plan)
    ]

    summary = summarize("vsibench", records)

    assert summary.metrics["task/obj_count"] == pytest.approx(0.6)
    assert summary.metrics["task/rel_dir"] == pytest.approx((1.0 + 0.0 + 0.5) / 3)
    assert summary.metrics["task/route_plan"] == 1.0
    assert summary.metrics["overall"] == pytest.approx((0.6 + 0.5 + 1.0) / 3)
    assert summary.headline == "overall"


def test_mathvision_reports_the_official_two_decimal_rule_beside_the_strict_one(
    item_of, record_of
) -> None:
    item = item_of(benchmark="mathvision", gold="1.414", answer_type="float")
    records = [
        record_of(item, 0.0, scores={"abs_1e-6": 0.0, "official_2dp": 1.0}),
        record_of(item.model_copy(update={"id": "q2"}), 1.0, scores={"official_2dp": 1.0}),
    ]

    summary = summarize("mathvision", records)

    assert summary.metrics["accuracy"] == pytest.approx(0.5)
    assert summary.metrics["accuracy_official_2dp"] == pytest.approx(1.0)
    assert any("1e-6" in note for note in summary.notes)


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
