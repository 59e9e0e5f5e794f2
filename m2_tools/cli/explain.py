"""Plain-words reading of one result, for ``m2-tools ask --explain``.

The JSON a tool returns is written for programs; a person trying the tool for
the first time mostly sees nulls and numbers. This says, for the result at
hand, what its status means, why empty fields are empty and what the numbers
count. It goes to stderr, so stdout stays the result JSON alone.
"""

from __future__ import annotations

import textwrap

from m2_tools.schemas import M2Result

__all__ = ["FLAG_MEANINGS", "explain_result"]

_WIDTH = 88
_ANSWER_FIELDS = ("answer", "choice", "choice_text", "value", "rationale")

_STATUS = {
    "ok": "the model gave a final answer that an agent can act on.",
    "no_answer": "the model finished without a usable final answer: none at all, an empty "
    "one, or, with choices, one that matches no option (its text then stays in answer).",
    "truncated": "the model was still writing when it reached the token limit, so there is "
    "no final answer to read. Allow more tokens with --max-new-tokens.",
    "ambiguous": "the model wrote a long answer without a conclusion that could be picked out.",
}

#: The parser's flags (see ``m2_tools.answers.parsing``) in words for a person.
FLAG_MEANINGS = {
    "empty_output": "the model wrote nothing",
    "no_think": "no <think> reasoning block",
    "think_unclosed": "the reasoning block was never closed",
    "reasoning_only": "reasoning, and nothing after it",
    "answer_in_think": "the answer was found inside the reasoning",
    "no_answer_tag": "no <answer> block",
    "answer_unclosed": "the <answer> block was never closed",
    "empty_answer": "the <answer> block was empty",
    "no_box": "no \\boxed{} answer",
    "empty_box": "every \\boxed{} was empty",
    "box_unclosed": "the \\boxed{} used was cut off",
    "multiple_boxes": "several different boxed answers: the last one counts",
    "answer_from_phrase": 'the answer was taken from "the answer is …"',
    "no_conclusion": "a long answer without a conclusion",
    "letter_out_of_range": "a letter beyond the options",
    "letter_value_conflict": "the letter and the text after it point to different options",
    "no_choice": "options were given and the answer matched none",
    "value_from_sentence": "value is the only number of a short sentence",
    "cut_off_at_token_limit": "generation stopped at the token limit",
}


def explain_result(result: M2Result) -> str:
    """Describe ``result`` field by field, in plain words.

    Args:
        result: A result returned by one of the tools.

    Returns:
        Lines of text for a person, ending without a newline.
    """
    usage = result.usage
    items = [f'status "{result.status}": {_STATUS[result.status]}']
    if result.finish_reason == "length":
        items.append(
            f'finish_reason "length": it stopped at the limit, after '
            f"{usage.completion_tokens} new tokens."
        )
    else:
        items.append('finish_reason "stop": the model ended its output by itself.')
    items += _answer_items(result)
    if result.flags:
        notes = "; ".join(f"{f} ({FLAG_MEANINGS.get(f, 'a parser note')})" for f in result.flags)
        items.append(f"flags: how the parser read the output: {notes}.")
    if result.confidence is not None and result.votes is not None:
        items.append(
            f"confidence {result.confidence:.2f}: the share of the {sum(result.votes.values())} "
            "samples that gave this answer; votes counts each answer."
        )
    items.append(f"model: {result.model.id}, run by {result.model.backend}.")
    items.append(
        f"usage: {usage.prompt_tokens} prompt tokens ({usage.image_tokens} of them stand for "
        f"the images), {usage.completion_tokens} generated."
    )
    items.append(_timings(result))
    for number, image in enumerate(result.images, start=1):
        items.append(
            f"image {number} ({image.source}): {image.width}×{image.height} as given, "
            f"{image.model_width}×{image.model_height} as the model saw it."
        )
    wrapped = (
        textwrap.fill(item, _WIDTH, initial_indent="  ", subsequent_indent="    ") for item in items
    )
    return "\n".join(["How to read this result:", *wrapped])


def _answer_items(result: M2Result) -> list[str]:
    items = []
    if result.answer is not None:
        items.append(f"answer {result.answer!r}: the final answer, as the model wrote it.")
    if result.choice is not None:
        picked = f" ({result.choice_text!r})" if result.choice_text is not None else ""
        items.append(f"choice {result.choice}{picked}: the option it picked, by letter.")
    if result.value is not None:
        items.append(f"value {result.value:g}: the answer as a number.")
    if result.rationale is not None:
        cut = ", cut short" if result.rationale_truncated else ""
        items.append(f"rationale: its reasoning, {len(result.rationale)} characters{cut}.")
    empty = [name for name in _ANSWER_FIELDS if getattr(result, name) is None]
    if empty:
        items.append(
            f"{', '.join(empty)}: null, as the output held nothing to fill "
            f"{'it' if len(empty) == 1 else 'them'} with (they are read from the model's "
            "<think>…</think><answer>…</answer> text)."
        )
    return items


def _timings(result: M2Result) -> str:
    t = result.timings_ms
    if t.cache_hit:
        return f"timings_ms: {t.total / 1000:.2f} s in all, answered from the cache."
    return (
        f"timings_ms: {t.total / 1000:.2f} s in all: {t.queue / 1000:.2f} s waiting for the "
        f"model (loading included), {t.preprocess / 1000:.2f} s preparing the inputs, "
        f"{t.generate / 1000:.2f} s generating."
    )
