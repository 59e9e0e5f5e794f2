"""From the model's raw text to a structured answer, as docs/parsing.md describes.

M2-Reasoning answers ``<think>…</think><answer>\\boxed{…}</answer>``; real outputs
drift from that, and :func:`parse_response` turns any string into a
:class:`ParsedAnswer` without raising. Every deviation adds a flag:

==========================  ===========================================================
``empty_output``            nothing left after normalising
``no_think``                no ``<think>`` block
``think_unclosed``          ``<think>`` never closed (truncated unless an answer follows)
``reasoning_only``          the reasoning closed and nothing followed
``answer_in_think``         the answer came from an ``<answer>`` block in the reasoning
``no_answer_tag``           no ``<answer>`` block: the text after the reasoning was used
``answer_unclosed``         ``<answer>`` never closed
``empty_answer``            ``<answer></answer>`` held nothing
``no_box``                  the answer had no ``\\boxed{}``
``empty_box``               every box was empty
``box_unclosed``            the box used was cut off
``multiple_boxes``          several different boxes: the last one was used
``answer_from_phrase``      the answer was cut from "… the answer is X"
``no_conclusion``           a long untagged answer without a conclusion (ambiguous)
``letter_out_of_range``     a letter beyond the options
``letter_value_conflict``   the letter's option differs from the text after it
``no_choice``               options were given and none matched (status ``no_answer``)
``value_from_sentence``     ``value`` is the only number of a short sentence
==========================  ===========================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

from m2_tools.answers.choices import choose_option
from m2_tools.answers.numbers import number_in_sentence, parse_number
from m2_tools.answers.text import (
    clean_answer,
    conclusion,
    find_boxes,
    normalise,
    remove_boxes,
    unwrap_box,
)

__all__ = ["ParsedAnswer", "Status", "normalize_vote_key", "parse_response"]

Status = Literal["ok", "no_answer", "truncated", "ambiguous"]

_LONG_ANSWER_CHARS = 200
_LONG_ANSWER_LINES = 3
_THINK_OPEN, _THINK_CLOSE = "<think>", "</think>"
_ANSWER_OPEN, _ANSWER_CLOSE = "<answer>", "</answer>"
_TAGS = (_THINK_OPEN, _THINK_CLOSE, _ANSWER_OPEN, _ANSWER_CLOSE)


@dataclass(frozen=True)
class ParsedAnswer:
    """The structured reading of one completion.

    Attributes:
        answer: The final answer, cleaned (from ``\\boxed{}`` / ``<answer>``), or None.
        choice: The option letter, or letters joined by ``,`` for multi-select.
        choice_text: The chosen option's text, when exactly one option was chosen.
        value: The answer as one finite number, when it is one.
        rationale: The reasoning from ``<think>``.
        rationale_truncated: True when the reasoning was cut off before it closed.
        status: ``ok``, ``no_answer``, ``truncated`` or ``ambiguous``.
        flags: Short names of every deviation from the expected format.
    """

    answer: str | None = None
    choice: str | None = None
    choice_text: str | None = None
    value: float | None = None
    rationale: str | None = None
    rationale_truncated: bool = False
    status: Status = "no_answer"
    flags: tuple[str, ...] = ()


class _Reasoning(NamedTuple):
    rationale: str | None
    truncated: bool
    tail: str | None  # where the answer may be; None when the reasoning was cut off
    inner: str
    flags: tuple[str, ...]


class _Span(NamedTuple):
    text: str | None
    tagged: bool
    open: bool  # the <answer> was left open and the turn did not end
    flags: tuple[str, ...]


class _Extracted(NamedTuple):
    raw: str | None
    truncated: bool
    ambiguous: bool
    flags: tuple[str, ...]
    boxed: bool = False  # a closed, non-empty box was found


def parse_response(text: str, choices: Sequence[str] | None = None) -> ParsedAnswer:
    """Parse a raw M2-Reasoning completion into answer, choice, value and status.

    Args:
        text: The decoded completion; special tokens may be kept or removed.
        choices: The option texts in order (labelled A, B, C, …), when the question had any.

    Returns:
        The parsed answer. It never raises for any string and is deterministic.

    Example:
        >>> parse_response("<think>…</think><answer>\\\\boxed{C}</answer>", ["1", "2", "3"]).value
        3.0
    """
    normalised, ended = normalise(text)
    if not normalised:
        return ParsedAnswer(flags=("empty_output",))
    reasoning = _split_reasoning(normalised)
    span = _answer_span(reasoning, ended=ended)
    extracted = _extract(span)
    flags = [*reasoning.flags, *span.flags, *extracted.flags]
    # Why: a closed box inside an unclosed <answer> is a complete answer (docs/parsing.md).
    truncated = reasoning.truncated or extracted.truncated or (span.open and not extracted.boxed)
    answer = clean_answer(extracted.raw) if extracted.raw is not None else ""
    if not answer:
        status: Status = "ambiguous" if extracted.ambiguous else "no_answer"
        return ParsedAnswer(
            rationale=reasoning.rationale,
            rationale_truncated=reasoning.truncated,
            status="truncated" if truncated else status,
            flags=_unique(flags),
        )
    options = tuple(choices or ())
    choice, choice_text, value = _interpret(answer, options, flags)
    if options and choice is None:
        # Why: with options, an agent acts on the letter; an answer naming none is no answer.
        flags.append("no_choice")
    return ParsedAnswer(
        answer=answer,
        choice=choice,
        choice_text=choice_text,
        value=value,
        rationale=reasoning.rationale,
        rationale_truncated=reasoning.truncated,
        status="truncated" if truncated else "ok" if choice or not options else "no_answer",
        flags=_unique(flags),
    )


def _unique(flags: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(flags))


def _interpret(
    answer: str, choices: tuple[str, ...], flags: list[str]
) -> tuple[str | None, str | None, float | None]:
    """Steps 6 and 7: the option letter(s), the chosen option's text and the value."""
    match = choose_option(answer, choices)
    flags += match.flags
    if match.letters is not None and match.index is None:
        return match.letters, None, None
    value = _value(match.rest, flags)
    if value is None:
        value = match.option_value
    chosen_text = choices[match.index] if match.index is not None else None
    return match.letters, chosen_text, value


def _split_reasoning(text: str) -> _Reasoning:
    close = text.rfind(_THINK_CLOSE)
    if close >= 0:
        opening = text.find(_THINK_OPEN, 0, close)
        inner = text[opening + len(_THINK_OPEN) if opening >= 0 else 0 : close]
        tail = text[close + len(_THINK_CLOSE) :]
        return _Reasoning(_rationale(inner), False, tail, inner, ())
    opening = text.find(_THINK_OPEN)
    if opening < 0:
        return _Reasoning(None, False, text, "", ("no_think",))
    after = text[opening + len(_THINK_OPEN) :]
    answer_at = after.find(_ANSWER_OPEN)
    if answer_at >= 0:
        # Why: an <answer> after an unclosed <think> shows the model moved on to answering.
        rationale = _rationale(after[:answer_at])
        return _Reasoning(rationale, False, after[answer_at:], "", ("think_unclosed",))
    # Why: a number in half-finished reasoning is not an answer.
    return _Reasoning(_rationale(after), True, None, "", ("think_unclosed",))


def _rationale(text: str) -> str | None:
    for tag in (_THINK_OPEN, _THINK_CLOSE):
        text = text.replace(tag, "")
    return text.strip() or None


def _strip_tags(text: str) -> str:
    for tag in _TAGS:
        text = text.replace(tag, " ")
    return text


def _answer_span(reasoning: _Reasoning, *, ended: bool) -> _Span:
    tail = reasoning.tail
    if tail is None:
        return _Span(None, True, False, ())
    close = tail.rfind(_ANSWER_CLOSE)
    if close >= 0:
        opening = tail.rfind(_ANSWER_OPEN, 0, close)
        body = _strip_tags(tail[opening + len(_ANSWER_OPEN) if opening >= 0 else 0 : close])
        return _Span(body, True, False, () if body.strip() else ("empty_answer",))
    opening = tail.rfind(_ANSWER_OPEN)
    if opening >= 0:
        body = _strip_tags(tail[opening + len(_ANSWER_OPEN) :])
        return _Span(body, True, not ended, ("answer_unclosed",))
    in_think = _last_answer_block(reasoning.inner)
    if in_think is not None:
        return _Span(in_think, True, False, ("answer_in_think",))
    if not tail.strip():
        return _Span(None, False, False, ("reasoning_only",))
    return _Span(_strip_tags(tail), False, False, ("no_answer_tag",))


def _last_answer_block(text: str) -> str | None:
    close = text.rfind(_ANSWER_CLOSE)
    opening = text.rfind(_ANSWER_OPEN, 0, close) if close >= 0 else -1
    if opening < 0:
        return None
    return _strip_tags(text[opening + len(_ANSWER_OPEN) : close])


def _extract(span: _Span) -> _Extracted:
    """Step 4 of docs/parsing.md: the last non-empty box, else a conclusion, else the span."""
    if span.text is None:
        return _Extracted(None, False, False, ())
    text = span.text
    boxes = find_boxes(text)
    filled = [box for box in boxes if box.content.strip()]
    if filled:
        last = filled[-1]
        flags = [] if last.closed else ["box_unclosed"]
        if len({box.content.strip() for box in filled}) > 1:
            flags.append("multiple_boxes")
        raw = unwrap_box(last.content)
        return _Extracted(raw, not last.closed, False, tuple(flags), boxed=last.closed)
    flags = ["empty_box"] if boxes else ["no_box"]
    if boxes:
        text = remove_boxes(text, boxes)
        if not boxes[-1].closed:
            return _Extracted(text, True, False, (*flags, "box_unclosed"))
    found = conclusion(text)
    if found is not None:
        phrase, dropped = found
        if dropped:
            flags.append("answer_from_phrase")
        return _Extracted(phrase, False, False, tuple(flags))
    if not span.tagged and _is_long(text):
        return _Extracted(None, False, True, (*flags, "no_conclusion"))
    return _Extracted(text, False, False, tuple(flags))


def _is_long(text: str) -> bool:
    stripped = text.strip()
    lines = sum(1 for line in stripped.split("\n") if line.strip())
    return len(stripped) > _LONG_ANSWER_CHARS or lines > _LONG_ANSWER_LINES


def _value(rest: str, flags: list[str]) -> float | None:
    if not rest:
        return None
    value = parse_number(rest)
    if value is None:
        value = number_in_sentence(rest)
        if value is not None:
            flags.append("value_from_sentence")
    return value


def normalize_vote_key(parsed: ParsedAnswer) -> str | None:
    """The key that self-consistency voting counts for one sample.

    The choice letters if any, else the value written canonically (``0.75``, ``5``),
    else the answer lower-cased with whitespace collapsed, else None.

    Args:
        parsed: One parsed sample.
    """
    if parsed.choice:
        return parsed.choice
    if parsed.value is not None:
        formatted = format(parsed.value, ".12g")
        return "0" if formatted == "-0" else formatted
    if parsed.answer:
        return " ".join(parsed.answer.lower().split()) or None
    return None
