"""parse_response never raises, is deterministic, keeps its invariants and stays fast."""

from __future__ import annotations

import math
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import m2_tools
from m2_tools.answers.parsing import ParsedAnswer, normalize_vote_key, parse_response

# Pieces of real and broken M2 outputs; joined at random they reach every branch.
FRAGMENTS = [
    "<think>",
    "</think>",
    "<answer>",
    "</answer>",
    "< ANSWER >",
    "</ Think>",
    "<|im_end|>",
    "<|endoftext|>",
    "<|im_start|>",
    "\\boxed{",
    "\\boxed ",
    "\\fbox{",
    "{",
    "}",
    "\\{",
    "\\}",
    "\\",
    "$",
    "\\(",
    "\\)",
    "**",
    "\\text{",
    "\\frac{",
    "\\dfrac",
    "\\sqrt",
    "[3]",
    "\\pi",
    "\\times 10^{",
    "^\\circ",
    "\\%",
    "\\approx",
    "≈",
    "=",
    "x = ",
    " or ",
    " and ",
    "The answer is ",
    "Answer:",
    "答案是",
    "答案：",
    "故选",
    "Option ",
    "A",
    "B",
    "C",
    "F",
    "(C)",
    "C.",
    "A, C",
    "A ball",
    " is ",
    "22.6",
    "−3",
    "1,234",
    "1e-3",
    "3 1/2",
    "0",
    "9" * 400,
    "three",
    "五",
    "个",
    "cm^2",
    "(",
    ")",
    "[",
    "]",
    ",",
    ".",
    "-",
    "/",
    "^",
    " ",
    "\n",
    "\r\n",
    "\ufeff",
    "\u200b",
]
fragment_text = st.lists(st.sampled_from(FRAGMENTS), max_size=40).map("".join)
any_text = st.one_of(st.text(), fragment_text)
any_choices = st.one_of(
    st.none(),
    st.lists(st.text(max_size=30), max_size=30),
    st.lists(st.sampled_from(["11.3", "22.6", "ball", "A", "", "1/2", "(C)", "五"]), max_size=6),
)


def assert_invariants(parsed: ParsedAnswer, choices: list[str] | None) -> None:
    assert parsed.status in {"ok", "no_answer", "truncated", "ambiguous"}
    assert parsed.value is None or math.isfinite(parsed.value)
    assert len(set(parsed.flags)) == len(parsed.flags)
    assert all(isinstance(flag, str) and flag for flag in parsed.flags)
    if parsed.status == "ok":
        assert parsed.answer
    if parsed.answer is None:
        assert (parsed.choice, parsed.choice_text, parsed.value) == (None, None, None)
    if parsed.choice_text is not None:
        assert parsed.choice is not None
        assert len(parsed.choice) == 1
    if parsed.choice and choices:
        for letter in parsed.choice.split(","):
            assert "ABCDEFGHIJKLMNOPQRSTUVWXYZ".index(letter) < len(choices)
    if parsed.rationale_truncated:
        assert parsed.status == "truncated"


@settings(max_examples=400, deadline=None)
@given(text=any_text, choices=any_choices)
def test_never_raises_on_any_string(text: str, choices: list[str] | None) -> None:
    parsed = parse_response(text, choices)

    assert_invariants(parsed, choices)
    normalize_vote_key(parsed)


@settings(max_examples=200, deadline=None)
@given(text=any_text, choices=any_choices)
def test_is_deterministic(text: str, choices: list[str] | None) -> None:
    assert parse_response(text, choices) == parse_response(text, choices)


@settings(max_examples=200, deadline=None)
@given(answer=st.text(max_size=60), choices=any_choices)
def test_never_raises_on_any_boxed_answer(answer: str, choices: list[str] | None) -> None:
    raw = f"<think>r</think>\n<answer>\n\\boxed{{{answer}}}\n</answer>"

    assert_invariants(parse_response(raw, choices), choices)


@settings(max_examples=100, deadline=None)
@given(value=st.integers(min_value=-(10**9), max_value=10**9))
def test_reads_back_any_boxed_integer(value: int) -> None:
    parsed = parse_response(f"<think>r</think><answer>\\boxed{{{value}}}</answer>")

    assert parsed.value == value
    assert normalize_vote_key(parsed) == str(value)


def test_is_exported_from_the_package() -> None:
    assert m2_tools.parse_response is parse_response
    assert m2_tools.ParsedAnswer is ParsedAnswer


N = 100_000
ADVERSARIAL = {
    "open_boxes": "\\boxed{" * (N // 7),
    "nested_boxes": "\\boxed{" * (N // 16) + "5" + "}" * (N // 16),
    "open_braces": "\\boxed{" + "{" * N,
    "empty_boxes": "\\boxed{}" * (N // 8),
    "think_opens": "<think>" * (N // 7),
    "think_closes": "</think>" * (N // 8),
    "answer_opens": "<answer>" * (N // 8),
    "spaced_lt": "<" + " " * N,
    "many_lt": "< " * (N // 2),
    "special_starts": "<|" * (N // 2),
    "end_tokens": "<|im_end|>" * (N // 10),
    "conclusions": "the answer is " * (N // 14),
    "final_spaces": ("final" + " " * 100) * (N // 105),
    "dots": "." * N + "x",
    "backslashes": "\\" * N,
    "dollars": "$" * N,
    "digits": "<answer>" + "1" * N + "</answer>",
    "commas": "<answer>" + "1," * (N // 2) + "</answer>",
    "parens": "<answer>" + "(" * N + "</answer>",
    "letters": "<answer>" + "A " * (N // 2) + "</answer>",
    "labels": "<answer>" + "(A) " * (N // 4) + "</answer>",
    "fracs": "<answer>\\boxed{" + "\\frac{" * (N // 6) + "</answer>",
    "wrappers": "<answer>" + "\\text{" * (N // 6) + "</answer>",
    "equals": "<answer>" + "x=" * (N // 2) + "</answer>",
    "label_space": "<answer>B" + " " * N + "is</answer>",
    "words": "word " * (N // 5),
}


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_finishes_fast_on_100kb_adversarial_input(name: str) -> None:
    text = ADVERSARIAL[name]
    start = time.perf_counter()
    parsed = parse_response(text, ["red ball", "blue box", "3", "4"])
    elapsed = time.perf_counter() - start

    assert_invariants(parsed, ["red ball", "blue box", "3", "4"])
    # Why: a generous bound; the real cost is ~0.1 s, catastrophic backtracking is minutes.
    assert elapsed < 2.0
