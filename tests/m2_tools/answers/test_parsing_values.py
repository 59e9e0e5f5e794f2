"""parse_response's ``value``: one number from the answer, or null (docs/parsing.md, step 7)."""

from __future__ import annotations

import math

import pytest

from m2_tools.answers.parsing import parse_response


def value_of(body: str, options: list[str] | None = None) -> float | None:
    raw = f"<think>r</think>\n<answer>\n{body}\n</answer>"
    return parse_response(raw, options).value


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # literals and separators
        ("\\boxed{42}", 42.0),
        ("\\boxed{-7}", -7.0),
        ("\\boxed{−3}", -3.0),
        ("\\boxed{+2.5}", 2.5),
        ("\\boxed{.5}", 0.5),
        ("\\boxed{1,234}", 1234.0),
        ("\\boxed{1,234,567.89}", 1234567.89),
        ("\\boxed{1{,}000}", 1000.0),
        ("\\boxed{1\\,000}", 1000.0),
        ("\\boxed{１２}", 12.0),
        # scientific notation
        ("\\boxed{1e-3}", 0.001),
        ("\\boxed{2.5E+2}", 250.0),
        ("\\boxed{1.5 \\times 10^{3}}", 1500.0),
        ("\\boxed{1.5\\times10^3}", 1500.0),
        ("\\boxed{3 \\cdot 10^{-2}}", 0.03),
        ("1.5×10³", 1500.0),
        ("1.5 x 10^3", 1500.0),
        ("\\boxed{10^{-3}}", 0.001),
        # fractions and mixed numbers
        ("\\boxed{\\frac{3}{4}}", 0.75),
        ("\\boxed{\\dfrac{1}{2}}", 0.5),
        ("\\boxed{\\tfrac{1}{8}}", 0.125),
        ("\\boxed{\\frac12}", 0.5),
        ("\\boxed{-\\frac{1}{2}}", -0.5),
        ("$\\frac{1}{2}$", 0.5),
        ("\\boxed{3/4}", 0.75),
        ("\\boxed{3 1/2}", 3.5),
        ("\\boxed{-3 1/2}", -3.5),
        ("\\boxed{3\\frac{1}{2}}", 3.5),
        ("\\boxed{2\\dfrac{3}{4}}", 2.75),
        # roots and pi
        ("\\boxed{\\sqrt{2}}", math.sqrt(2)),
        ("\\boxed{2\\sqrt{3}}", 2 * math.sqrt(3)),
        ("\\boxed{\\dfrac{\\sqrt{3}}{2}}", math.sqrt(3) / 2),
        ("\\boxed{\\frac{\\sqrt{3}}{2}}", math.sqrt(3) / 2),
        ("\\boxed{\\sqrt3/2}", math.sqrt(3) / 2),
        ("\\boxed{3\\sqrt{2}/2}", 3 * math.sqrt(2) / 2),
        ("\\boxed{\\sqrt[3]{8}}", 2.0),
        ("\\boxed{\\sqrt{3} - 1}", math.sqrt(3) - 1),
        ("√2", math.sqrt(2)),
        ("\\boxed{\\pi}", math.pi),
        ("\\boxed{\\pi/2}", math.pi / 2),
        ("\\boxed{\\frac{\\pi}{2}}", math.pi / 2),
        ("\\boxed{2\\pi}", 2 * math.pi),
        ("\\boxed{\\frac{3\\pi}{4}}", 3 * math.pi / 4),
        ("\\boxed{\\dfrac{1}{2}\\pi}", math.pi / 2),
        ("\\boxed{4π}", 4 * math.pi),
        ("\\boxed{2^3}", 8.0),
        ("\\boxed{3 \\times 4}", 12.0),
        # units, currency, degrees, percent
        ("\\boxed{12 \\text{ cm}^2}", 12.0),
        ("\\boxed{12\\,\\mathrm{cm}^{2}}", 12.0),
        ("\\boxed{5 \\text{ m/s}}", 5.0),
        ("\\boxed{9.8 m/s^2}", 9.8),
        ("\\boxed{2 \\text{ meters}}", 2.0),
        ("\\boxed{7 apples}", 7.0),
        ("\\boxed{4个}", 4.0),
        ("\\boxed{3 m^{-1}}", 3.0),
        ("\\boxed{30^\\circ}", 30.0),
        ("\\boxed{30^{\\circ}}", 30.0),
        ("\\boxed{45°}", 45.0),
        ("\\boxed{90 degrees}", 90.0),
        ("\\boxed{25\\%}", 25.0),
        ("\\boxed{12.5%}", 12.5),
        ("\\boxed{40 percent}", 40.0),
        ("\\boxed{\\$12.50}", 12.5),
        ("\\boxed{€30}", 30.0),
        ("\\boxed{20元}", 20.0),
        ("\\boxed{3.46 (approx)}", 3.46),
        # lead-ins
        ("\\boxed{x = 5}", 5.0),
        ("\\boxed{AB = 5 \\text{ cm}}", 5.0),
        ("\\boxed{\\angle ABC = 30^{\\circ}}", 30.0),
        ("\\boxed{x = y = 5}", 5.0),
        ("\\boxed{2 + 3 = 5}", 5.0),
        ("\\boxed{2\\sqrt{3} \\approx 3.46}", 3.46),
        ("\\boxed{\\approx 3.46}", 3.46),
        ("≈ 0.33", 0.33),
        ("\\boxed{about 5 meters}", 5.0),
        ("\\boxed{approximately 12}", 12.0),
        ("The answer is 12 cm.", 12.0),
        ("Answer: 7", 7.0),
        # words
        ("\\boxed{three}", 3.0),
        ("\\boxed{Three}", 3.0),
        ("\\boxed{twenty-one}", 21.0),
        ("\\boxed{one hundred and five}", 105.0),
        ("\\boxed{two chairs}", 2.0),
        ("\\boxed{zero}", 0.0),
        ("\\boxed{two thousand five hundred}", 2500.0),
        ("\\boxed{((2))}", 2.0),
        ("\\boxed{五}", 5.0),
        ("\\boxed{三个}", 3.0),
        ("\\boxed{十二}", 12.0),
        ("\\boxed{二十五}", 25.0),
        ("答案：五", 5.0),
    ],
)
def test_reads_one_number(body: str, expected: float) -> None:
    assert value_of(body) == pytest.approx(expected)


@pytest.mark.parametrize(
    "body",
    [
        "\\boxed{3-4}",
        "\\boxed{3 - 4}",
        "\\boxed{3–4}",
        "\\boxed{3~4}",
        "\\boxed{3 to 4}",
        "\\boxed{between 3 and 4}",
        "\\boxed{(2, 3)}",
        "\\boxed{[1, 5]}",
        "\\boxed{(0, 1]}",
        "\\boxed{\\{1, 2\\}}",
        "\\boxed{1, 2, 3}",
        "\\boxed{1,2}",
        "\\boxed{3 4}",
        "\\boxed{x = 5 \\text{ or } x = -5}",
        "\\boxed{x = 5, y = 3}",
        "\\boxed{x = \\pm 5}",
        "\\boxed{\\pm 2}",
        "\\boxed{x > 3}",
        "\\boxed{x \\leq 3}",
        "\\boxed{5 and 6}",
        "\\boxed{3:4}",
        "\\boxed{2x + 1}",
        "\\boxed{x^2}",
        "\\boxed{\\infty}",
        "\\boxed{\\frac{1}{0}}",
        "\\boxed{3/0}",
        "\\boxed{" + "(" * 30 + "\\pi" + ")" * 30 + "}",
        "\\boxed{三三}",
        "\\boxed{\\sqrt{-1}}",
        "\\boxed{10^{1000}}",
        "\\boxed{1e999}",
        "\\boxed{2\\frac{5}{4}}",
        "\\boxed{three apples and two pears}",
        "\\boxed{one of them}",
        "\\boxed{三角形}",
        "\\boxed{Yes}",
        "\\boxed{blue}",
        "It is between 3 and 4 meters.",
        "P1 is closer than P2.",
    ],
)
def test_ranges_lists_and_non_numbers_give_null(body: str) -> None:
    assert value_of(body) is None


def test_reads_the_single_number_of_a_short_sentence_and_flags_it() -> None:
    parsed = parse_response("<think>r</think><answer>There are 4 chairs in the room.</answer>")

    assert parsed.value == 4.0
    assert "value_from_sentence" in parsed.flags


def test_a_sentence_with_two_numbers_gives_null() -> None:
    assert value_of("There are 4 chairs and 2 tables.") is None


def test_number_words_inside_a_sentence_are_not_values() -> None:
    assert value_of("The one on the left is closer.") is None


def test_percent_is_the_number_as_written() -> None:
    assert value_of("\\boxed{0.25}") == 0.25
    assert value_of("\\boxed{25\\%}") == 25.0


def test_a_letter_answer_takes_the_number_of_its_option() -> None:
    assert value_of("\\boxed{B}", ["11.3 cm", "22.4 cm"]) == 22.4


def test_a_letter_with_text_takes_the_number_written_after_it() -> None:
    assert value_of("\\boxed{C. 22.6}", ["11.3", "22.6", "22.4", "25.6"]) == 22.6


def test_an_option_label_is_stripped_without_options() -> None:
    assert value_of("\\boxed{(C) 22.6}") == 22.6


def test_a_letter_of_a_non_numeric_option_has_no_value() -> None:
    assert value_of("\\boxed{A}", ["red", "blue"]) is None


def test_multi_select_has_no_value() -> None:
    assert value_of("\\boxed{A, C}", ["1", "2", "3", "4"]) is None


def test_value_is_always_finite() -> None:
    for body in ("\\boxed{10^{400}}", "\\boxed{1e400}", "\\boxed{-10^{999}}", "\\boxed{NaN}"):
        value = value_of(body)
        assert value is None or math.isfinite(value)
