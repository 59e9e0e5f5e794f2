"""Per-item scores, each expectation worked out from the benchmark's own scoring code.

The model's raw output goes through the real parser (as in a run); the docstring of
each test names the official function whose rule gives the expected score.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from m2_tools import parse_response
from m2_tools.evaluation import EvalItem, ItemScore, Prediction, mean_relative_accuracy, score_item
from m2_tools.evaluation.records import written_answer
from m2_tools.evaluation.scorers import MRA_THRESHOLDS, usable

from .conftest import boxed

ItemOf = Callable[..., EvalItem]


def predict(answer: str, options: list[str] | None = None, *, box: bool = True) -> Prediction:
    """The prediction a run records for a model that answered ``answer``."""
    raw = boxed(answer) if box else f"<think>\nok\n</think>\n<answer>{answer}</answer>"
    parsed = parse_response(raw, options)
    return Prediction(
        answer=parsed.answer,
        raw_answer=written_answer(raw),
        choice=parsed.choice,
        choice_text=parsed.choice_text,
        value=parsed.value,
        status=parsed.status,
        flags=list(parsed.flags),
    )


def score(item: EvalItem, answer: str, *, box: bool = True) -> float:
    result = score_item(item, predict(answer, item.options, box=box))
    assert not result.judge
    return result.score


# MathVista: evaluation/calculate_score.py (normalize_extracted_answer, safe_equal)


def _mathvista(item_of: ItemOf, **fields: Any) -> EvalItem:
    return item_of(benchmark="mathvista", **fields)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("B", 1.0),
        ("square", 1.0),
        ("squares", 1.0),
        ("a square", 1.0),
        ("A", 0.0),
        ("circles", 0.0),
    ],
)
def test_mathvista_choice_is_the_option_a_letter_names_or_the_nearest_by_edit_distance(
    answer: str, expected: float, item_of: ItemOf
) -> None:
    """normalize_extracted_answer: a letter indexes the choices, other text takes the
    choice with the smallest Levenshtein distance; safe_equal compares it with the gold text."""
    item = _mathvista(item_of, options=["circle", "square", "triangle"], gold="square")

    assert score(item, answer) == expected


@pytest.mark.parametrize(
    ("answer", "expected"), [("3", 1.0), ("3.7", 1.0), ("3,0", 0.0), ("4", 0.0)]
)
def test_mathvista_integers_compare_as_the_string_of_int_of_float(
    answer: str, expected: float, item_of: ItemOf
) -> None:
    """normalize_extracted_answer: str(int(float(x))), which truncates 3.7 to 3."""
    item = _mathvista(item_of, gold="3", answer_type="integer")

    assert score(item, answer) == expected


@pytest.mark.parametrize(
    ("answer", "expected"),
    [("0.5", 1.0), ("0.54", 1.0), ("0.45", 1.0), ("0.56", 0.0), ("0.44", 0.0)],
)
def test_mathvista_floats_are_rounded_to_the_item_precision_then_compared_as_strings(
    answer: str, expected: float, item_of: ItemOf
) -> None:
    """normalize_extracted_answer: str(round(float(x), int(precision))) == gold."""
    item = _mathvista(item_of, gold="0.5", answer_type="float", precision=1)

    assert score(item, answer) == expected


def test_mathvista_float_without_precision_cannot_score(item_of: ItemOf) -> None:
    """normalize_extracted_answer: int(None) raises, the prediction becomes None."""
    assert score(_mathvista(item_of, gold="0.5", answer_type="float"), "0.5") == 0.0


def test_mathvista_lists_compare_as_strings(item_of: ItemOf) -> None:
    """normalize_extracted_answer: answer_type list keeps str(extraction)."""
    item = _mathvista(item_of, gold="[2009, 2011]", answer_type="list")

    assert score(item, "[2009, 2011]") == 1.0
    assert score(item, "2009, 2011") == 0.0


# MathVision: evaluation/evaluate.py (evaluate) and evaluation/utils.py (find_math_answer, is_equal)


def _mathvision(item_of: ItemOf, **fields: Any) -> EvalItem:
    return item_of(benchmark="mathvision", **fields)


@pytest.mark.parametrize(
    ("answer", "expected"), [("C", 1.0), ("Friday", 1.0), ("c", 1.0), ("A", 0.0)]
)
def test_mathvision_choice_matches_the_gold_letter_or_its_option_text(
    answer: str, expected: float, item_of: ItemOf
) -> None:
    """evaluate: is_equal(gold, answer) or is_equal(options[gold], answer), lower-cased."""
    item = _mathvision(item_of, options=["Monday", "Tuesday", "Friday", "Sunday"], gold="C")

    assert score(item, answer) == expected


@pytest.mark.parametrize(
    ("gold", "answer", "expected"),
    [
        ("12", "12", 1.0),
        ("12", "12.004", 1.0),  # equal once both are rounded to 2 decimals
        ("12", "12.01", 0.0),
        ("$3\\sqrt{2}$", "3\\sqrt{2}", 1.0),
        ("$3\\sqrt{2}$", "4.24", 1.0),
        ("$3\\sqrt{2}$", "4.2", 0.0),
        ("1:4", "0.25", 1.0),  # latex2sympy reads a ratio as a division
        ("(4, 3)", "(4.0, 3.0)", 1.0),  # eval_tuple
        ("B", "(b)", 1.0),  # a letter gold without options
        ("11 ", "11", 1.0),
        ("69{degrees}", "69", 0.0),  # the gold cannot be evaluated: only equal text counts
        ("$\\boxed{\\frac{9}{4}}$", "\\frac{9}{4}", 0.0),  # nor can a boxed gold
    ],
)
def test_mathvision_cleans_the_answer_not_the_gold_and_compares_to_two_decimals(
    gold: str, answer: str, expected: float, item_of: ItemOf
) -> None:
    """find_math_answer cleans the model's answer only; is_equal tries equal text, equal
    tuples, then round(eval(latex2sympy(x)), 2) on both sides."""
    item = _mathvision(item_of, gold=gold, answer_type="text")

    assert score(item, answer) == expected


# MathVerse: evaluation/score_answer_s2.py (match_answer) and VLMEvalKit post_check_score


def _mathverse(item_of: ItemOf, **fields: Any) -> EvalItem:
    return item_of(benchmark="mathverse", **fields)


def test_mathverse_an_exact_copy_of_the_gold_is_right(item_of: ItemOf) -> None:
    """match_answer: answer == extraction is consistent (the gold is not cleaned)."""
    gold = "Circumference $=12.6 \\mathrm{~cm}$"
    item = _mathverse(item_of, gold=gold, answer_type="text")

    assert score(item, gold, box=False) == 1.0
    assert score(_mathverse(item_of, gold="60 ", answer_type="integer"), "60") == 1.0


@pytest.mark.parametrize(
    ("gold", "answer", "options"),
    [
        ("10", "10.0", None),  # equal values, different text: the judge decides
        ("B", "C", ["60°", "70°", "80°"]),
        ("(A)", "A", ["a line", "a parabola"]),
        ("False", "B", ["True", "False"]),
    ],
)
def test_mathverse_any_other_answer_is_left_to_the_gpt_judge(
    gold: str, answer: str, options: list[str] | None, item_of: ItemOf
) -> None:
    """match_answer: without an exact match the official code asks a GPT judge."""
    item = _mathverse(item_of, gold=gold, options=options, answer_type="text")

    assert score_item(item, predict(answer, options)) == ItemScore(0.0, judge=True)


def test_mathverse_a_letter_equal_to_the_gold_is_right(item_of: ItemOf) -> None:
    item = _mathverse(item_of, gold="B", options=["60°", "70°", "80°"])

    assert score(item, "B. 70°") == 1.0


def test_a_failed_call_or_no_answer_at_all_scores_zero_and_is_not_left_to_a_judge(
    item_of: ItemOf,
) -> None:
    """The judge prompt's own example: a null extraction is inconsistent (judgement 0)."""
    item = _mathverse(item_of, gold="3")
    assert score_item(item, None) == ItemScore(0.0)
    assert score_item(item, predict("", box=False)) == ItemScore(0.0)
    assert score_item(item, Prediction(raw_answer="garbage 4", status="truncated")) == ItemScore(
        0.0
    )


# DynaMath: evaluation/opensource_json_eval.py (the rule of its result loop)


def _dynamath(item_of: ItemOf, **fields: Any) -> EvalItem:
    return item_of(benchmark="dynamath", **fields)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [("3.1416", 1.0), ("3.142", 1.0), ("3.15", 0.0), ("1π", 1.0), ("3.1416 radians", 1.0)],
)
def test_dynamath_floats_are_right_within_a_thousandth(
    answer: str, expected: float, item_of: ItemOf
) -> None:
    """float: the first word, with π multiplied out, within ±0.001 of the gold."""
    item = _dynamath(item_of, gold="3.1416", answer_type="float")

    assert score(item, answer) == expected


def test_dynamath_int_golds_with_float_noise_compare_as_numbers(item_of: ItemOf) -> None:
    """The int golds are float sums (-7.000000000000001): the rule meant compares values."""
    item = _dynamath(item_of, gold="-7.000000000000001", answer_type="float")

    assert score(item, "-7") == 1.0
    assert score(item, "-6") == 0.0


@pytest.mark.parametrize(
    ("gold", "answer", "expected"),
    [
        ("Tuesday", "Tuesday", 1.0),
        ("Tuesday", "It is Tuesday", 1.0),  # the gold within the answer
        ("Tuesday", "tuesday", 0.0),  # case-sensitive
        ("17", "117", 1.0),
        ("(4, 3)", "(4,3)", 0.0),
    ],
)
def test_dynamath_text_answers_are_right_when_they_contain_the_gold(
    gold: str, answer: str, expected: float, item_of: ItemOf
) -> None:
    """Any other answer type: `ground_truth in answer`."""
    assert score(_dynamath(item_of, gold=gold, answer_type="text"), answer) == expected


def test_dynamath_multiple_choice_compares_one_letter(item_of: ItemOf) -> None:
    """multiple choice: a one-character answer equals the gold, else the gold in its first 3."""
    item = _dynamath(item_of, gold="A", options=["yes", "no"])

    assert score(item, "A") == 1.0
    assert score(item, "yes") == 1.0  # the option text gives the letter A
    assert score(item, "B") == 0.0


# WeMath: evaluation/four_dimensional_metrics.py (load_and_process_data)


def test_wemath_compares_the_first_letter_with_the_gold(item_of: ItemOf) -> None:
    """processed_answer: the first character after the last "Answer", if in A-H."""
    item = item_of(benchmark="wemath", options=["3 cm", "4 cm", "5 cm"], gold="B")

    assert score(item, "B") == 1.0
    assert score(item, "4 cm") == 1.0
    assert score(item, "C") == 0.0


# LogicVista: eval/extract_accuracy.py (the sorted lower-case lists must be equal)


@pytest.mark.parametrize(
    ("gold", "answer", "expected"),
    [
        ("B,D", "D, B", 1.0),
        ("B,D", "b and d", 1.0),
        ("B,D", "B", 0.0),
        ("B,D", "BD", 1.0),
        ("C", "c", 1.0),  # a lower-case letter, and the question has no options
        ("C", "C) 14", 1.0),
        ("2", "2", 1.0),  # a numbered answer
        ("2", "3", 0.0),
    ],
)
def test_logicvista_needs_the_same_letters_in_any_order_and_case(
    gold: str, answer: str, expected: float, item_of: ItemOf
) -> None:
    """MLLM_answers and truth_answers, lower-cased and sorted, must be equal lists."""
    kind = "integer" if gold.isdigit() else "multiple_choice"
    assert score(item_of(benchmark="logicvista", gold=gold, answer_type=kind), answer) == expected


def test_logicvista_one_line_options_map_an_option_value_to_its_letter(item_of: ItemOf) -> None:
    item = item_of(benchmark="logicvista", gold="B", options=["9", "11", "13", "15"])

    assert score(item, "11") == 1.0


# CV-Bench and VSI-Bench: VLMEvalKit (mcq_vanilla_eval; spatial_bench/cal_scores.py)


@pytest.mark.parametrize("name", ["cvbench", "vsibench"])
def test_spatial_multiple_choice_compares_the_extracted_letter(name: str, item_of: ItemOf) -> None:
    """exact_match on the extracted option letter, case-insensitive."""
    item = item_of(benchmark=name, options=["left", "right"], gold="B")

    assert score(item, "B") == 1.0
    assert score(item, "right") == 1.0
    assert score(item, "A") == 0.0


def test_mra_thresholds_are_those_of_numpy_linspace() -> None:
    """mean_relative_accuracy: np.linspace(0.5, 0.95, int((0.95 - 0.5) / 0.05 + 2))."""
    assert pytest.approx([0.5 + 0.05 * i for i in range(10)]) == list(MRA_THRESHOLDS)
    assert MRA_THRESHOLDS[8] == 0.8999999999999999  # the value linspace computes, not 0.9


@pytest.mark.parametrize(
    ("prediction", "gold", "expected"),
    [
        (4.0, 4.0, 1.0),
        (2.1, 2.0, 1.0),
        (2.5, 2.0, 0.6),
        (3.0, 2.0, 0.1),
        (1.5, 2.0, 0.6),
        (0.3, 0.0, 0.5),  # a zero gold: the absolute error against 1 - θ
        (None, 2.0, 0.0),
        (float("nan"), 2.0, 0.0),
    ],
)
def test_mra_matches_vlmevalkit(prediction: float | None, gold: float, expected: float) -> None:
    """mean_relative_accuracy with abs_dist_norm: |ŷ - y| / |y| (or |ŷ| when y = 0) <= 1 - θ."""
    assert mean_relative_accuracy(prediction, gold) == pytest.approx(expected)


def test_vsibench_numeric_items_use_mra_on_the_parsed_value(item_of: ItemOf) -> None:
    item = item_of(benchmark="vsibench", gold="2.0", answer_type="float")

    assert score(item, "2.5 meters") == pytest.approx(0.6)
    assert score(item, "about two or three") == 0.0


# Any other benchmark (and the synthetic suite): by answer type


def test_other_benchmarks_score_by_answer_type(item_of: ItemOf) -> None:
    assert (
        score(item_of(gold="A,C", answer_type="multi_select", options=list("pqrs")), "C, A") == 1.0
    )
    assert score(item_of(gold="12", answer_type="integer"), "12") == 1.0
    assert score(item_of(gold="2.5", answer_type="float", precision=1), "2.54") == 1.0
    assert score(item_of(gold="Blue", answer_type="text"), "blue") == 1.0


def test_parse_failure_depends_on_the_answer_type(item_of: ItemOf) -> None:
    letters = item_of(options=["p", "q"])
    number = item_of(gold="3", answer_type="integer")

    assert usable(letters, predict("B", ["p", "q"]))
    assert not usable(letters, predict("maybe", ["p", "q"]))
    assert usable(number, predict("3"))
    assert not usable(number, predict("three or four"))
