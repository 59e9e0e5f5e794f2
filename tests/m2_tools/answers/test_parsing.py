"""parse_response: docs/parsing.md's examples, normalisation, spans, boxes, status and flags."""

from __future__ import annotations

import dataclasses

import pytest

from m2_tools.answers.parsing import ParsedAnswer, normalize_vote_key, parse_response

OPT4 = ["11.3", "22.4", "22.6", "25.6"]
THINK = "<think>\nThe figure shows a triangle; 137.9 * 2 = 275.8.\n</think>\n"


def wrapped(answer: str) -> str:
    """A well-formed M2 output whose <answer> block holds ``answer``."""
    return f"{THINK}<answer>\n{answer}\n</answer><|im_end|>"


# (raw output, options, answer, choice, value, status): docs/parsing.md's table, row by row.
SPEC_TABLE = [
    (
        "<think>…</think>\n<answer>\n\\boxed{C. 22.6}\n</answer><|im_end|>",
        OPT4,
        "C. 22.6",
        "C",
        22.6,
        "ok",
    ),
    ("<think>…</think><answer>\\boxed{C}</answer>", OPT4, "C", "C", 22.6, "ok"),
    ("<think>…</think><answer>\\boxed{22.6}</answer>", OPT4, "22.6", "C", 22.6, "ok"),
    ("<think>…</think><answer>B</answer>", OPT4, "B", "B", 22.4, "ok"),
    (
        "<think>…</think><answer>\\boxed{C. 22.6}</answer>",
        ["11.3", "22.6", "22.4", "25.6"],
        "C. 22.6",
        "C",
        22.6,
        "ok",
    ),
    (
        "<answer>A ball is closer to the camera.</answer>",
        ["chair", "ball"],
        "A ball is closer to the camera",
        "B",
        None,
        "ok",
    ),
    ("<answer>\\boxed{A, C}</answer>", ["p", "q", "r", "s"], "A, C", "A,C", None, "ok"),
    ("<answer>\\boxed{\\frac{3}{4}}</answer>", None, "\\frac{3}{4}", None, 0.75, "ok"),
    ("<answer>\\boxed{30^\\circ}</answer>", None, "30^\\circ", None, 30.0, "ok"),
    ("<answer>\\boxed{25\\%}</answer>", None, "25\\%", None, 25.0, "ok"),
    ("<answer>\\boxed{x = 5}</answer>", None, "x = 5", None, 5.0, "ok"),
    ("<answer>\\boxed{3-4}</answer>", None, "3-4", None, None, "ok"),
    ("<answer>First \\boxed{4}, corrected: \\boxed{5}</answer>", None, "5", None, 5.0, "ok"),
    ("<think>…</think><answer>\\boxed{}</answer>", None, None, None, None, "no_answer"),
    (
        "<think>\nLet me compute 137.9 * 2 = 275.8 and divide by 12.2",
        OPT4,
        None,
        None,
        None,
        "truncated",
    ),
    ("<think>…</think>\n<answer>\n\\boxed{C. 22.6}", OPT4, "C. 22.6", "C", 22.6, "ok"),
    ("< think >…</ think >\n< ANSWER >\\boxed{7}</ Answer >", None, "7", None, 7.0, "ok"),
    ("<think>……</think>\n<answer>答案是 \\boxed{B}</answer>", OPT4, "B", "B", 22.4, "ok"),
]


@pytest.mark.parametrize(
    ("raw", "options", "answer", "choice", "value", "status"),
    SPEC_TABLE,
    ids=[f"row{i + 1}" for i in range(len(SPEC_TABLE))],
)
def test_reproduces_every_row_of_the_spec_table(
    raw: str,
    options: list[str] | None,
    answer: str | None,
    choice: str | None,
    value: float | None,
    status: str,
) -> None:
    parsed = parse_response(raw, options)

    assert (parsed.answer, parsed.choice, parsed.status) == (answer, choice, status)
    assert parsed.value == (pytest.approx(value) if value is not None else None)


def test_flags_the_letter_value_conflict_and_keeps_the_letter() -> None:
    parsed = parse_response(
        "<think>…</think><answer>\\boxed{C. 22.6}</answer>", ["11.3", "22.6", "22.4", "25.6"]
    )

    assert (parsed.choice, parsed.choice_text, parsed.value) == ("C", "22.4", 22.6)
    assert "letter_value_conflict" in parsed.flags


def test_returns_the_whole_well_formed_result() -> None:
    parsed = parse_response(
        "<think>\nAB is the hypotenuse.\n</think>\n<answer>\n\\boxed{C}\n</answer><|im_end|>",
        OPT4,
    )

    assert parsed == ParsedAnswer(
        answer="C",
        choice="C",
        choice_text="22.6",
        value=22.6,
        rationale="AB is the hypotenuse.",
        rationale_truncated=False,
        status="ok",
        flags=(),
    )


def test_result_is_frozen() -> None:
    parsed = parse_response(wrapped("\\boxed{1}"))

    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.answer = "2"  # type: ignore[misc]


# --- normalising -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "\ufeff<think>a\r\nb</think>\r\n<answer>\r\n\\boxed{9}\r\n</answer>",
        "<think>a</think><answer>\u200b\\boxed{\u200d9\u2060}</answer>",
        "<think>a</think><answer>\\boxed{9}</answer><|endoftext|>",
        "<think>a</think><answer>\\boxed{9}</answer><|im_end|>\n<|im_start|>user\n\\boxed{4}",
        "<THINK>a</THINK><Answer>\\boxed{9}</ANSWER>",
        "< think>a< /think >< answer >\\boxed{9}</answer >",
        "<|im_start|>assistant\n<think>a</think><answer>\\boxed{9}</answer>",
    ],
    ids=["crlf-bom", "zero-width", "endoftext", "next-turn-ignored", "upper", "spaced", "header"],
)
def test_normalises_line_ends_invisibles_tokens_and_tags(raw: str) -> None:
    parsed = parse_response(raw)

    assert (parsed.answer, parsed.value, parsed.status) == ("9", 9.0, "ok")


def test_keeps_crlf_out_of_the_rationale() -> None:
    parsed = parse_response("<think>\r\nline one\r\nline two\r\n</think><answer>1</answer>")

    assert parsed.rationale == "line one\nline two"


@pytest.mark.parametrize("raw", ["", "   \n\t", "<|im_end|>", "\ufeff\u200b"])
def test_reports_empty_output_as_no_answer(raw: str) -> None:
    parsed = parse_response(raw)

    assert (parsed.status, parsed.answer, parsed.flags) == ("no_answer", None, ("empty_output",))


# --- reasoning and answer spans ----------------------------------------------------------


def test_rationale_is_the_text_up_to_the_last_think_close() -> None:
    parsed = parse_response("<think>first</think> aside </think><answer>\\boxed{2}</answer>")

    assert parsed.rationale == "first aside"
    assert parsed.answer == "2"


def test_think_close_without_opening_tag_still_splits_off_reasoning() -> None:
    parsed = parse_response("reasoning from the template</think>\n<answer>\\boxed{3}</answer>")

    assert (parsed.rationale, parsed.answer) == ("reasoning from the template", "3")


def test_unclosed_think_is_truncated_and_ignores_boxes_inside_it() -> None:
    parsed = parse_response("<think>so far the answer looks like \\boxed{12} but wait")

    assert (parsed.status, parsed.answer, parsed.value) == ("truncated", None, None)
    assert parsed.rationale_truncated
    assert parsed.rationale == "so far the answer looks like \\boxed{12} but wait"
    assert "think_unclosed" in parsed.flags


def test_answer_after_an_unclosed_think_is_taken_and_flagged() -> None:
    parsed = parse_response("<think>reasoning <answer>\\boxed{6}</answer>")

    assert (parsed.answer, parsed.status, parsed.rationale) == ("6", "ok", "reasoning")
    assert not parsed.rationale_truncated
    assert "think_unclosed" in parsed.flags


def test_takes_the_last_complete_answer_block() -> None:
    raw = f"{THINK}<answer>\\boxed{{1}}</answer> then <answer>\\boxed{{2}}</answer>"

    assert parse_response(raw).answer == "2"


def test_answer_block_spans_several_lines() -> None:
    parsed = parse_response(f"{THINK}<answer>\nSo,\n\n\\boxed{{\n42\n}}\n</answer>")

    assert (parsed.answer, parsed.value) == ("42", 42.0)


def test_unclosed_answer_without_box_is_truncated_but_keeps_its_text() -> None:
    parsed = parse_response(f"{THINK}<answer>\nB")

    assert (parsed.answer, parsed.choice, parsed.status) == ("B", "B", "truncated")
    assert "answer_unclosed" in parsed.flags


def test_unclosed_answer_ended_by_end_of_turn_is_complete() -> None:
    parsed = parse_response(f"{THINK}<answer>\nB<|im_end|>", OPT4)

    assert (parsed.answer, parsed.status) == ("B", "ok")


def test_uses_an_answer_block_inside_the_reasoning_when_the_tail_has_none() -> None:
    parsed = parse_response("<think>draft <answer>\\boxed{4}</answer> done</think>")

    assert (parsed.answer, parsed.status) == ("4", "ok")
    assert "answer_in_think" in parsed.flags


def test_reasoning_only_gives_no_answer() -> None:
    parsed = parse_response("<think>I computed \\boxed{8} along the way.</think>\n")

    assert (parsed.status, parsed.answer) == ("no_answer", None)
    assert parsed.rationale == "I computed \\boxed{8} along the way."
    assert "reasoning_only" in parsed.flags


def test_uses_the_tail_when_there_is_no_answer_tag() -> None:
    parsed = parse_response(f"{THINK}The answer is \\boxed{{12}}.")

    assert (parsed.answer, parsed.value, parsed.status) == ("12", 12.0, "ok")
    assert "no_answer_tag" in parsed.flags


def test_uses_the_whole_text_when_there_are_no_tags() -> None:
    parsed = parse_response("Counting the cubes gives \\boxed{7}.")

    assert (parsed.answer, parsed.value, parsed.rationale) == ("7", 7.0, None)
    assert {"no_think", "no_answer_tag"} <= set(parsed.flags)


def test_an_empty_answer_block_is_no_answer() -> None:
    parsed = parse_response(f"{THINK}<answer>\n</answer>")

    assert (parsed.status, parsed.answer) == ("no_answer", None)
    assert "empty_answer" in parsed.flags


# --- boxes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "answer"),
    [
        ("\\boxed{4} and again \\boxed{4}", "4"),
        ("\\boxed{4} then \\boxed{}", "4"),
        ("\\boxed{\\boxed{5}}", "5"),
        ("\\boxed{x = \\boxed{5}}", "5"),
        ("\\boxed{\\frac{1}{\\sqrt{2}}}", "\\frac{1}{\\sqrt{2}}"),
        ("\\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),
        ("\\boxed 7", "7"),
        ("\\fbox{8}", "8"),
        ("\\boxed {9}", "9"),
        ("$\\boxed{10}$", "10"),
        ("\\boxed{\\text{(B)}}", "(B)"),
        ("\\boxed{\\textbf{C}}", "C"),
        ("\\boxed{\\mathrm{Yes}}", "Yes"),
    ],
)
def test_takes_last_nonempty_box_and_unwraps_it(body: str, answer: str) -> None:
    assert parse_response(wrapped(body)).answer == answer


def test_flags_several_different_boxes() -> None:
    parsed = parse_response(wrapped("First \\boxed{4}, corrected: \\boxed{5}"))

    assert "multiple_boxes" in parsed.flags


def test_does_not_flag_a_repeated_identical_box() -> None:
    assert "multiple_boxes" not in parse_response(wrapped("\\boxed{4}\n\\boxed{4}")).flags


def test_unclosed_box_keeps_partial_content_and_is_truncated() -> None:
    parsed = parse_response(f"{THINK}<answer>\n\\boxed{{\\frac{{3}}{{4")

    assert parsed.status == "truncated"
    assert parsed.answer == "\\frac{3}{4"
    assert "box_unclosed" in parsed.flags


def test_empty_box_counts_as_no_box_so_surrounding_text_is_used() -> None:
    parsed = parse_response(wrapped("\\boxed{} 42"))

    assert (parsed.answer, parsed.value, parsed.status) == ("42", 42.0, "ok")
    assert "empty_box" in parsed.flags


def test_empty_box_with_only_a_lead_in_is_no_answer() -> None:
    parsed = parse_response(wrapped("The answer is \\boxed{}."))

    assert (parsed.answer, parsed.status) == (None, "no_answer")


# --- cleaning the answer -------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "answer"),
    [
        ("$\\frac{1}{2}$", "\\frac{1}{2}"),
        ("\\(x = 3\\)", "x = 3"),
        ("**C**", "C"),
        ("**Answer:** C", "C"),
        ("Answer: 5.", "5"),
        ("The answer is 12 cm.", "12 cm"),
        ("The final answer is: $7$", "7"),
        ("Option C", "C"),
        ("答案：C", "C"),
        ("答案是 3", "3"),
        ("故选C。", "C"),
        ("\\boxed{1{,}000}", "1,000"),
        ("\\boxed{12\\,\\text{cm}^2}", "12 cm^2"),
        ("\\boxed{\\left(2, 3\\right)}", "(2, 3)"),
        ('"blue box"', "blue box"),
        ("\\boxed{\\$12.50}", "$12.50"),
        ("Therefore, 8", "8"),
    ],
)
def test_cleans_wrappers_lead_ins_and_trailing_punctuation(body: str, answer: str) -> None:
    assert parse_response(wrapped(body)).answer == answer


# --- conclusions and ambiguity -------------------------------------------------------


def test_takes_the_conclusion_of_an_untagged_tail() -> None:
    tail = "Looking at the bars, the tallest is June.\n\n**Final Answer:** 42 units"
    parsed = parse_response(THINK + tail)

    assert (parsed.answer, parsed.value, parsed.status) == ("42 units", 42.0, "ok")
    assert "answer_from_phrase" in parsed.flags


def test_conclusion_stops_at_the_end_of_its_sentence() -> None:
    parsed = parse_response(THINK + "So the answer is 5. This matches the figure.")

    assert (parsed.answer, parsed.value) == ("5", 5.0)


def test_conclusion_keeps_an_option_label_with_its_text() -> None:
    parsed = parse_response(THINK + "The correct answer is C. 22.6 because", OPT4)

    assert parsed.choice == "C"


def test_takes_the_conclusion_inside_a_tagged_sentence() -> None:
    parsed = parse_response(wrapped("Since the ball occludes the chair, the answer is B."), OPT4)

    assert (parsed.answer, parsed.choice) == ("B", "B")


def test_long_untagged_rambling_is_ambiguous() -> None:
    rambling = "Let me look at the image again. There are 3 red and 4 blue shapes. " * 6
    parsed = parse_response(rambling)

    assert (parsed.status, parsed.answer, parsed.value) == ("ambiguous", None, None)
    assert "no_conclusion" in parsed.flags


def test_long_untagged_text_with_a_conclusion_is_ok() -> None:
    rambling = "Let me look at the image again. There are 3 red and 4 blue shapes. " * 6
    parsed = parse_response(rambling + "\nTherefore, the answer is 7.")

    assert (parsed.status, parsed.value) == ("ok", 7.0)


def test_long_tagged_answer_is_not_ambiguous() -> None:
    sentence = "The red cube is closer to the camera than the blue sphere. "
    parsed = parse_response(wrapped(sentence * 5))

    assert parsed.status == "ok"
    assert parsed.answer is not None


def test_short_untagged_answer_is_ok() -> None:
    parsed = parse_response(THINK + "The ball is closer.", ["chair", "ball"])

    assert (parsed.status, parsed.choice) == ("ok", "B")


# --- vote key -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parsed", "key"),
    [
        (ParsedAnswer(answer="C. 22.6", choice="C", value=22.6, status="ok"), "C"),
        (ParsedAnswer(answer="A, C", choice="A,C", status="ok"), "A,C"),
        (ParsedAnswer(answer="\\frac{3}{4}", value=0.75, status="ok"), "0.75"),
        (ParsedAnswer(answer="5.0", value=5.0, status="ok"), "5"),
        (ParsedAnswer(answer="-0", value=-0.0, status="ok"), "0"),
        (ParsedAnswer(answer="1.5e3", value=1500.0, status="ok"), "1500"),
        (ParsedAnswer(answer="  The Red\n Box ", status="ok"), "the red box"),
        (ParsedAnswer(status="no_answer"), None),
    ],
)
def test_vote_key_prefers_choice_then_value_then_answer(
    parsed: ParsedAnswer, key: str | None
) -> None:
    assert normalize_vote_key(parsed) == key


def test_equivalent_numeric_answers_share_a_vote_key() -> None:
    keys = {
        normalize_vote_key(parse_response(wrapped(body)))
        for body in ("\\boxed{\\frac{3}{4}}", "\\boxed{0.75}", "\\boxed{\\dfrac{3}{4}}", "0.750")
    }

    assert keys == {"0.75"}


def test_samples_choosing_the_same_option_share_a_vote_key() -> None:
    bodies = ("\\boxed{C}", "\\boxed{22.6}", "\\boxed{(C) 22.6}", "The answer is C.")
    keys = {normalize_vote_key(parse_response(wrapped(body), OPT4)) for body in bodies}

    assert keys == {"C"}


# --- flags and inputs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "flags"),
    [
        (wrapped("\\boxed{5}"), ()),
        (wrapped("5"), ("no_box",)),
        ("<answer>\\boxed{5}</answer>", ("no_think",)),
        (THINK + "\\boxed{5}", ("no_answer_tag",)),
        (
            THINK + "Thinking aloud. Final answer: 5",
            ("no_answer_tag", "no_box", "answer_from_phrase"),
        ),
        (f"{THINK}<answer>\\boxed{{5}}", ("answer_unclosed",)),
        (f"{THINK}<answer>\\boxed{{5", ("answer_unclosed", "box_unclosed")),
        (wrapped("\\boxed{}"), ("empty_box",)),
        ("<think>cut", ("think_unclosed",)),
        (THINK.strip(), ("reasoning_only",)),
    ],
)
def test_every_deviation_adds_its_flag(raw: str, flags: tuple[str, ...]) -> None:
    assert parse_response(raw).flags == flags


def test_flags_an_answer_that_matches_no_option() -> None:
    assert "no_choice" in parse_response(wrapped("\\boxed{99}"), OPT4).flags


def test_empty_choices_behave_like_none() -> None:
    raw = wrapped("\\boxed{C. 22.6}")

    assert parse_response(raw, []) == parse_response(raw, None)


def test_accepts_choices_as_any_sequence() -> None:
    assert parse_response(wrapped("\\boxed{22.4}"), tuple(OPT4)).choice == "B"


def test_truncated_answer_still_reports_what_it_read() -> None:
    parsed = parse_response(f"{THINK}<answer>\nThe answer is C", OPT4)

    assert (parsed.status, parsed.choice) == ("truncated", "C")
