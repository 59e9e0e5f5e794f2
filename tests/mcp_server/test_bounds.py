"""Prompt text is bounded before any work: each option, and question plus options together."""

from __future__ import annotations

from typing import Any

import pytest

from m2_tools.schemas import MAX_CHOICE_CHARS, MAX_PROMPT_TEXT_CHARS, MAX_QUESTION_CHARS
from m2_tools.testing import ScriptedEngine

from ._support import ReasonerFactory, connect, error_of


@pytest.mark.parametrize(
    "arguments",
    [
        {"question": "q", "choices": ["a", "b" * (MAX_CHOICE_CHARS + 1)]},
        {"question": "q", "choices": ["a", ""]},
        {"question": "q", "choices": ["c" * 200_000] * 26},
        {
            "question": "q" * MAX_QUESTION_CHARS,
            # Each field within its own limit; together one option over the whole limit.
            "choices": ["o" * MAX_CHOICE_CHARS]
            * ((MAX_PROMPT_TEXT_CHARS - MAX_QUESTION_CHARS) // MAX_CHOICE_CHARS + 1),
        },
    ],
    ids=["long-option", "empty-option", "five-megabytes", "question-plus-options"],
)
@pytest.mark.parametrize("tool", ["visual_math_reason", "spatial_reason"])
async def test_oversized_prompt_text_is_refused_before_the_engine_sees_it(
    make_reasoner: ReasonerFactory, tool: str, arguments: dict[str, Any]
) -> None:
    engine = ScriptedEngine()
    extra = {"images": ["data:,"]} if tool == "spatial_reason" else {}
    async with connect(make_reasoner(engine=engine)) as client:
        result = await client.call_tool(tool, {**arguments, **extra})

    error = error_of(result)
    assert error["code"] == "invalid_argument"
    assert len(error["message"]) < 1000
    assert engine.requests == []


async def test_prompt_text_at_the_limits_is_accepted(make_reasoner: ReasonerFactory) -> None:
    engine = ScriptedEngine()
    count = (MAX_PROMPT_TEXT_CHARS - MAX_QUESTION_CHARS) // MAX_CHOICE_CHARS
    arguments = {
        "question": "q" * MAX_QUESTION_CHARS,
        "choices": ["o" * (MAX_CHOICE_CHARS - 1) + chr(ord("a") + i) for i in range(count)],
    }
    async with connect(make_reasoner(engine=engine)) as client:
        result = await client.call_tool("visual_math_reason", arguments)

    assert not result.is_error, result.content
    assert len(engine.requests) == 1


async def test_the_input_schema_publishes_the_option_length_limits(
    make_reasoner: ReasonerFactory,
) -> None:
    async with connect(make_reasoner()) as client:
        tools = (await client.list_tools()).tools

    for tool in tools:
        choices = tool.input_schema["properties"]["choices"]
        (array,) = [branch for branch in choices["anyOf"] if branch.get("type") == "array"]
        assert (array["items"]["minLength"], array["items"]["maxLength"]) == (1, MAX_CHOICE_CHARS)
