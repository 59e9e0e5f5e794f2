"""parse_response's ``status`` with options (step 8): ``ok`` means there is a choice to act on."""

from __future__ import annotations

import pytest

from m2_tools.answers.parsing import ParsedAnswer, parse_response

OPT4 = ["11.3", "22.4", "22.6", "25.6"]
OBJECTS = ["red ball", "blue box", "green cone", "yellow cup"]


def parsed(body: str, options: list[str] | None) -> ParsedAnswer:
    return parse_response(f"<think>r</think>\n<answer>\n{body}\n</answer>", options)


@pytest.mark.parametrize(
    ("body", "options", "answer"),
    [
        ("\\boxed{99}", OPT4, "99"),
        ("\\boxed{22.5}", OPT4, "22.5"),
        ("\\boxed{purple box}", OBJECTS, "purple box"),
        ("\\boxed{A or C}", OPT4, "A or C"),
        ("The ball and the box are equally close.", ["ball", "box"], None),
    ],
)
def test_an_answer_that_matches_no_option_is_no_answer_and_keeps_its_text(
    body: str, options: list[str], answer: str | None
) -> None:
    result = parsed(body, options)

    assert (result.status, result.choice, result.choice_text) == ("no_answer", None, None)
    assert "no_choice" in result.flags
    assert result.answer is not None
    if answer is not None:
        assert result.answer == answer


@pytest.mark.parametrize("body", ["\\boxed{F}", "\\boxed{A, F}"])
def test_a_letter_beyond_the_options_is_no_answer(body: str) -> None:
    result = parsed(body, OPT4)

    assert (result.status, result.choice) == ("no_answer", None)
    assert {"letter_out_of_range", "no_choice"} <= set(result.flags)


@pytest.mark.parametrize(
    ("body", "options", "choice"),
    [
        ("\\boxed{C}", OPT4, "C"),
        ("\\boxed{22.6}", OPT4, "C"),
        ("\\boxed{blue box}", OBJECTS, "B"),
        ("\\boxed{A, C}", OPT4, "A,C"),
    ],
)
def test_an_answer_that_names_an_option_is_ok(body: str, options: list[str], choice: str) -> None:
    result = parsed(body, options)

    assert (result.status, result.choice) == ("ok", choice)
    assert "no_choice" not in result.flags


def test_without_options_an_answer_is_ok_without_a_choice() -> None:
    result = parsed("\\boxed{99}", None)

    assert (result.status, result.choice, result.value) == ("ok", None, 99)
    assert "no_choice" not in result.flags


def test_a_cut_off_answer_stays_truncated_even_when_it_matches_nothing() -> None:
    result = parse_response("<think>r</think><answer>\\boxed{99", OPT4)

    assert result.status == "truncated"
