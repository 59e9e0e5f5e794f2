"""parse_response's ``choice`` and ``choice_text``: mapping answers to options (step 6)."""

from __future__ import annotations

import pytest

from m2_tools.answers.parsing import ParsedAnswer, parse_response

OPT4 = ["11.3", "22.4", "22.6", "25.6"]
OBJECTS = ["red ball", "blue box", "green cone", "yellow cup"]


def parsed(body: str, options: list[str] | None) -> ParsedAnswer:
    return parse_response(f"<think>r</think>\n<answer>\n{body}\n</answer>", options)


@pytest.mark.parametrize(
    ("body", "choice"),
    [
        ("\\boxed{C}", "C"),
        ("\\boxed{(C)}", "C"),
        ("\\boxed{C.}", "C"),
        ("\\boxed{C. 22.6}", "C"),
        ("\\boxed{(C) 22.6}", "C"),
        ("\\boxed{C) 22.6}", "C"),
        ("\\boxed{C: 22.6}", "C"),
        ("\\boxed{C、22.6}", "C"),
        ("\\boxed{[C]}", "C"),
        ("\\boxed{（C）}", "C"),
        ("\\boxed{(c)}", "C"),
        ("\\boxed{c}", "C"),
        ("\\boxed{\\text{(B)}}", "B"),
        ("\\boxed{\\textbf{(D)} 25.6}", "D"),
        ("**Answer: C**", "C"),
        ("The correct option is (D).", "D"),
        ("The answer is B.", "B"),
        ("Option C", "C"),
        ("答案：C", "C"),
        ("答案是 B", "B"),
        ("选项B", "B"),
        ("故选C。", "C"),
        ("\\boxed{C 22.6}", "C"),
        ("B is correct.", "B"),
        ("I think the answer is B.", "B"),
    ],
)
def test_reads_a_leading_letter(body: str, choice: str) -> None:
    assert parsed(body, OPT4).choice == choice


@pytest.mark.parametrize(
    ("body", "choice", "choice_text", "value"),
    [
        ("\\boxed{C}", "C", "22.6", 22.6),
        ("\\boxed{22.6}", "C", "22.6", 22.6),
        ("\\boxed{22.60}", "C", "22.6", 22.6),
        ("\\boxed{22.4 \\text{ cm}}", "B", "22.4", 22.4),
        ("The length is 25.6.", "D", "25.6", 25.6),
    ],
)
def test_letter_and_value_answers_fill_choice_text_and_value(
    body: str, choice: str, choice_text: str, value: float
) -> None:
    result = parsed(body, OPT4)

    assert (result.choice, result.choice_text, result.value) == (choice, choice_text, value)


@pytest.mark.parametrize(
    ("body", "options", "choice"),
    [
        ("\\boxed{blue box}", OBJECTS, "B"),
        ("\\boxed{Blue Box}", OBJECTS, "B"),
        ("\\boxed{\\text{green cone}}", OBJECTS, "C"),
        ("The blue box is closest to the camera.", OBJECTS, "B"),
        ("A ball is closer to the camera.", ["chair", "ball"], "B"),
        ("The ball.", ["the chair", "the ball"], "B"),
        ("\\boxed{Yes}", ["Yes", "No"], "A"),
        ("No, it is not.", ["Yes", "No"], "B"),
        ("It is the red box.", ["red", "red box", "blue box"], "B"),
        ("\\boxed{\\frac{1}{2}}", ["1/3", "1/2", "2/3"], "B"),
        ("\\boxed{0.5}", ["$\\frac{1}{3}$", "$\\frac{1}{2}$"], "B"),
        ("\\boxed{90^{\\circ}}", ["45°", "90°", "120°"], "B"),
        ("\\boxed{4}", ["3", "4", "5", "6"], "B"),
        ("There are 4 chairs.", ["3", "4", "5", "6"], "B"),
        ("\\boxed{four}", ["3", "4", "5", "6"], "B"),
        ("\\boxed{AC}", ["AB", "AC", "BC"], "B"),
        ("\\boxed{红球}", ["红球", "蓝盒"], "A"),
        ("红球更近", ["红球", "蓝盒"], "A"),
        ("\\boxed{B}", ["chair", "ball"], "B"),
    ],
)
def test_maps_option_text_and_values_to_a_letter(
    body: str, options: list[str], choice: str
) -> None:
    result = parsed(body, options)

    assert result.choice == choice
    assert result.choice_text == options["ABCDEFGHIJKLMNOPQRSTUVWXYZ".index(choice)]


def test_never_takes_the_article_a_as_a_letter() -> None:
    result = parsed("A ball is closer to the camera.", ["ball", "chair"])

    assert (result.choice, result.choice_text) == ("A", "ball")
    assert parsed("A chair.", ["ball", "box"]).choice is None


@pytest.mark.parametrize(
    ("body", "choice"),
    [
        ("\\boxed{A, C}", "A,C"),
        ("\\boxed{A,C}", "A,C"),
        ("\\boxed{C, A}", "A,C"),
        ("\\boxed{A and C}", "A,C"),
        ("\\boxed{A、C}", "A,C"),
        ("\\boxed{(A)(C)}", "A,C"),
        ("\\boxed{(A), (C)}", "A,C"),
        ("\\boxed{A; B; D}", "A,B,D"),
        ("\\boxed{AC}", "A,C"),
        ("Options A and C", "A,C"),
        ("\\boxed{A, A}", "A"),
    ],
)
def test_reads_letter_lists_as_sorted_multi_select(body: str, choice: str) -> None:
    result = parsed(body, ["p", "q", "r", "s"])

    assert result.choice == choice
    assert result.value is None
    if "," in choice:
        assert result.choice_text is None


def test_reads_a_letter_list_without_options() -> None:
    assert parsed("\\boxed{A, C}", None).choice == "A,C"


def test_out_of_range_letter_gives_no_choice() -> None:
    result = parsed("\\boxed{F}", OPT4)

    assert (result.answer, result.choice, result.choice_text, result.value) == (
        "F",
        None,
        None,
        None,
    )
    assert "letter_out_of_range" in result.flags


def test_out_of_range_letter_in_a_list_gives_no_choice() -> None:
    result = parsed("\\boxed{A, F}", OPT4)

    assert result.choice is None
    assert "letter_out_of_range" in result.flags


def test_a_bare_letter_is_a_choice_even_without_options() -> None:
    result = parsed("\\boxed{C}", None)

    assert (result.choice, result.choice_text, result.value) == ("C", None, None)


def test_a_lowercase_letter_without_options_is_not_a_choice() -> None:
    assert parsed("\\boxed{x}", None).choice is None


def test_a_labelled_answer_without_options_is_not_a_choice() -> None:
    result = parsed("\\boxed{C. 22.6}", None)

    assert (result.choice, result.value) == (None, 22.6)


def test_flags_letter_value_conflict_and_keeps_the_letter() -> None:
    result = parsed("\\boxed{B. 22.6}", OPT4)

    assert (result.choice, result.choice_text, result.value) == ("B", "22.4", 22.6)
    assert "letter_value_conflict" in result.flags


def test_flags_letter_text_conflict() -> None:
    result = parsed("\\boxed{A. blue box}", OBJECTS)

    assert result.choice == "A"
    assert "letter_value_conflict" in result.flags


def test_a_letter_with_its_own_option_text_has_no_conflict() -> None:
    result = parsed("\\boxed{B. blue box}", OBJECTS)

    assert result.choice == "B"
    assert "letter_value_conflict" not in result.flags


@pytest.mark.parametrize(
    ("body", "options"),
    [
        ("\\boxed{22.5}", OPT4),
        ("\\boxed{22}", OPT4),
        ("\\boxed{purple box}", OBJECTS),
        ("\\boxed{bleu box}", OBJECTS),
        ("\\boxed{A or C}", OPT4),
        ("The ball and the box are equally close.", ["ball", "box"]),
        ("\\boxed{5}", ["5", "5", "6"]),
        ("\\boxed{AB}", ["AB", "AB", "C"]),
    ],
)
def test_never_guesses_a_nearest_or_ambiguous_option(body: str, options: list[str]) -> None:
    result = parsed(body, options)

    assert result.choice is None
    assert "no_choice" in result.flags


def test_numeric_options_are_not_matched_inside_other_numbers() -> None:
    assert parsed("There are 10 chairs.", ["1", "2", "3"]).choice is None


def test_ignores_more_than_26_options_beyond_z() -> None:
    options = [f"opt{i}" for i in range(30)]

    assert parsed("\\boxed{Z}", options).choice_text == "opt25"
    assert parsed("\\boxed{opt28}", options).choice is None


def test_options_written_with_their_own_labels_still_match() -> None:
    options = ["A. 11.3", "B. 22.4", "C. 22.6", "D. 25.6"]

    assert parsed("\\boxed{22.6}", options).choice == "C"
    result = parsed("\\boxed{B}", options)
    assert (result.choice, result.choice_text, result.value) == ("B", "B. 22.4", 22.4)


def test_hyphens_and_spaces_between_words_match_alike() -> None:
    options = ["front-left", "front-right", "back-left", "back-right"]

    assert parsed("\\boxed{front left}", options).choice == "A"
    assert parsed("It is at the back-right of the sofa.", options).choice == "D"
    assert parsed("\\boxed{-3}", ["3", "-3"]).choice == "B"
