"""Per-item scoring against hand-computed expectations, benchmark by benchmark."""

from __future__ import annotations

import math

import pytest

from m2_tools.answers.parsing import parse_response
from m2_tools.evaluation import Prediction, mean_relative_accuracy, score_item
from m2_tools.evaluation.scorers import MRA_THRESHOLDS, gold_number, usable

# --- VSI-Bench Mean Relative Accuracy -------------------------------------------------------


def test_mra_uses_exactly_the_ten_thresholds_from_050_to_095() -> None:
    assert [t / 100 for t in MRA_THRESHOLDS] == pytest.approx(
        [0.50, 0.55, 0.60, 0.65, 0.70, 0.75, 0.80, 0.85, 0.90, 0.95]
    )


@pytest.mark.parametrize(
    ("prediction", "gold", "expected"),
    [
        # |2.1-2|/2 = 0.05 <= 1-θ for all ten θ (0.05 sits exactly on θ = 0.95).
        (2.1, 2.0, 1.0),
        # 0.25 <= 1-θ for θ in {.50, .55, .60, .65, .70, .75}: 6 of 10.
        (2.5, 2.0, 0.6),
        # 0.5 <= 1-θ only for θ = .50: 1 of 10.
        (3.0, 2.0, 0.1),
        (1.0, 2.0, 0.1),
        (2.0, 2.0, 1.0),
        # 0.1 <= 1-θ for θ <= .90: 9 of 10.
        (2.2, 2.0, 0.9),
        (5.0, 2.0, 0.0),
        (None, 2.0, 0.0),
        (math.nan, 2.0, 0.0),
        (0.0, 0.0, 1.0),
    ],
)
def test_mra_matches_hand_computed_values(
    prediction: float | None, gold: float, expected: float
) -> None:
    assert mean_relative_accuracy(prediction, gold) == pytest.approx(expected, abs=1e-12)


def test_vsibench_scores_numeric_items_with_mra_and_unparseable_as_zero(item_of) -> None:
    item = item_of(benchmark="vsibench", gold="2", answer_type="float")

    assert score_item(item, Prediction(value=2.5)).score == pytest.approx(0.6)
    assert score_item(item, Prediction(answer="many", value=None)).score == 0.0


def test_vsibench_scores_multiple_choice_by_exact_letter(item_of) -> None:
    item = item_of(benchmark="vsibench", options=["left", "right"], gold="B")

    assert score_item(item, Prediction(choice="B")).score == 1.0
    assert score_item(item, Prediction(choice="A")).score == 0.0


# --- MathVista -------------------------------------------------------------------------------


def test_mathvista_multiple_choice_compares_option_text_with_the_gold_text(item_of) -> None:
    item = item_of(benchmark="mathvista", options=["circle", "square", "triangle"], gold="square")

    assert score_item(item, Prediction(choice="B", choice_text="square")).score == 1.0
    assert score_item(item, Prediction(choice="B")).score == 1.0  # text looked up from the letter
    assert score_item(item, Prediction(choice="A", choice_text="circle")).score == 0.0
    assert score_item(item, Prediction(answer="square")).score == 0.0  # no option chosen


@pytest.mark.parametrize(("value", "hit"), [(3.0, 1.0), (3.7, 1.0), (4.0, 0.0), (None, 0.0)])
def test_mathvista_integers_compare_as_int_of_float(
    value: float | None, hit: float, item_of
) -> None:
    item = item_of(benchmark="mathvista", gold="3", answer_type="integer")

    assert score_item(item, Prediction(value=value)).score == hit


@pytest.mark.parametrize(("value", "hit"), [(0.5, 1.0), (0.54, 1.0), (0.46, 1.0), (0.56, 0.0)])
def test_mathvista_floats_are_rounded_to_the_item_precision(
    value: float, hit: float, item_of
) -> None:
    item = item_of(benchmark="mathvista", gold="0.5", answer_type="float", precision=1)

    assert score_item(item, Prediction(value=value)).score == hit


def test_mathvista_text_answers_compare_as_normalised_strings(item_of) -> None:
    item = item_of(benchmark="mathvista", gold="[1, 2]", answer_type="text")

    assert score_item(item, Prediction(answer="[1, 2]")).score == 1.0
    assert score_item(item, Prediction(answer="[2, 1]")).score == 0.0


# --- MathVision (and MathVerse) -------------------------------------------------------------


def test_mathvision_reports_both_tolerance_conventions(item_of) -> None:
    item = item_of(benchmark="mathvision", gold="1.414", answer_type="float")

    close = score_item(item, Prediction(value=1.4142))  # |diff| = 2e-4; both round to 1.41
    exact = score_item(item, Prediction(value=1.414))

    assert close.scores == {"abs_1e-6": 0.0, "official_2dp": 1.0}
    assert close.score == 0.0  # the headline rule is |a-b| < 1e-6
    assert exact.scores == {"abs_1e-6": 1.0, "official_2dp": 1.0}


def test_mathvision_evaluates_a_latex_gold_symbolically(item_of) -> None:
    item = item_of(benchmark="mathvision", gold="\\frac{3}{4}", answer_type="text")

    assert score_item(item, Prediction(answer="0.75", value=0.75)).score == 1.0
    assert score_item(item, Prediction(answer="\\frac{3}{4}")).score == 1.0  # equal strings
    assert score_item(item, Prediction(answer="0.7", value=0.7)).score == 0.0


def test_mathvision_with_options_compares_letters(item_of) -> None:
    item = item_of(benchmark="mathvision", options=list("ABCDE"), gold="C")

    assert score_item(item, Prediction(choice="C")).score == 1.0
    assert score_item(item, Prediction(choice="D")).score == 0.0


def test_failed_call_scores_zero_under_every_convention(item_of) -> None:
    item = item_of(benchmark="mathverse", gold="50.3", answer_type="float")

    scored = score_item(item, None)

    assert scored.score == 0.0
    assert scored.scores == {"abs_1e-6": 0.0, "official_2dp": 0.0}


# --- DynaMath, LogicVista, WeMath, CV-Bench, generic ----------------------------------------


@pytest.mark.parametrize(("value", "hit"), [(4.0, 1.0), (4.001, 1.0), (3.9995, 1.0), (4.002, 0.0)])
def test_dynamath_floats_match_within_a_thousandth(value: float, hit: float, item_of) -> None:
    item = item_of(benchmark="dynamath", gold="4.0", answer_type="float")

    assert score_item(item, Prediction(value=value)).score == hit


@pytest.mark.parametrize(
    ("gold", "choice", "hit"),
    [
        ("A,C", "A,C", 1.0),
        ("A,C", "C,A", 1.0),
        ("A,C", "A", 0.0),
        ("B", "B", 1.0),
        ("B", "B,C", 0.0),
    ],
)
def test_logicvista_needs_the_exact_set_of_letters(
    gold: str, choice: str, hit: float, item_of
) -> None:
    item = item_of(benchmark="logicvista", options=list("pqrs"), gold=gold)

    assert score_item(item, Prediction(choice=choice)).score == hit


@pytest.mark.parametrize("bench", ["wemath", "cvbench", "synthetic"])
def test_letter_benchmarks_compare_the_chosen_letter(bench: str, item_of) -> None:
    item = item_of(benchmark=bench, options=["3", "2", "1"], gold="C")

    assert score_item(item, Prediction(choice="C")).score == 1.0
    assert score_item(item, Prediction(choice="A")).score == 0.0
    assert score_item(item, Prediction(choice=None, answer="1")).score == 0.0


def test_generic_integers_need_the_exact_value(item_of) -> None:
    item = item_of(gold="12", answer_type="integer")

    assert score_item(item, Prediction(value=12.0)).score == 1.0
    assert score_item(item, Prediction(value=12.4)).score == 0.0


def test_generic_floats_use_precision_when_given(item_of) -> None:
    item = item_of(gold="7.5", answer_type="float", precision=1)

    assert score_item(item, Prediction(value=7.5)).score == 1.0
    assert score_item(item, Prediction(value=7.46)).score == 1.0
    assert score_item(item, Prediction(value=7.4)).score == 0.0


def test_scores_parsed_model_output_end_to_end(item_of) -> None:
    options = ["11.3", "22.4", "22.6", "25.6"]
    item = item_of(benchmark="mathvista", options=options, gold="22.6")
    parsed = parse_response("<think>…</think>\n<answer>\n\\boxed{C. 22.6}\n</answer>", options)

    prediction = Prediction(
        answer=parsed.answer,
        choice=parsed.choice,
        choice_text=parsed.choice_text,
        value=parsed.value,
        status=parsed.status,
        flags=list(parsed.flags),
    )

    assert score_item(item, prediction).score == 1.0


def test_gold_numbers_accept_plain_and_latex_forms() -> None:
    assert gold_number("1,000") == 1000
    assert gold_number("\\frac{1}{4}") == pytest.approx(0.25)
    assert gold_number("2\\sqrt{2}") == pytest.approx(2 * math.sqrt(2))
    assert gold_number("a triangle") is None


def test_parse_failure_depends_on_the_answer_type(item_of) -> None:
    letter = item_of(options=["a", "b"])
    number = item_of(gold="3", answer_type="integer")

    assert not usable(letter, Prediction(answer="maybe"))
    assert usable(letter, Prediction(choice="A"))
    assert not usable(number, Prediction(answer="three-ish"))
    assert usable(number, Prediction(value=3.0))
