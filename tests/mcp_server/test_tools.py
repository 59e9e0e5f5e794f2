"""Listing and calling the tools through an in-memory client (scripted engine)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from mcp.types import Tool

from m2_tools.catalog import tool_spec
from m2_tools.schemas import M2Result, SpatialReasonInput, VisualMathReasonInput
from m2_tools.testing import ScriptedEngine
from mcp_server.server import STATUS_URI

from ._support import ReasonerFactory, connect, payload_of, png_data_uri

MATH_REPLY = (
    "<think>\nThe diagonals halve each other; 2 + 2 = 4.\n</think>\n"
    "<answer>\nThe answer is \\boxed{C}\n</answer>"
)
SPATIAL_REPLY = "<think>\nThe chair is in front.\n</think>\n<answer>\n\\boxed{3}\n</answer>"


async def _tools(reasoner_factory: ReasonerFactory, **settings: object) -> dict[str, Tool]:
    async with connect(reasoner_factory(**settings)) as client:
        listed = await client.list_tools()
    return {tool.name: tool for tool in listed.tools}


async def test_lists_both_tools_with_catalog_titles_and_descriptions(
    make_reasoner: ReasonerFactory,
) -> None:
    tools = await _tools(make_reasoner)

    assert set(tools) == {"visual_math_reason", "spatial_reason"}
    for name, tool in tools.items():
        assert tool.title == tool_spec(name).title
        assert tool.description == tool_spec(name).description


@pytest.mark.parametrize(
    ("name", "model"),
    [("visual_math_reason", VisualMathReasonInput), ("spatial_reason", SpatialReasonInput)],
)
async def test_input_schema_is_the_core_model_schema_flat(
    make_reasoner: ReasonerFactory, name: str, model: type[VisualMathReasonInput]
) -> None:
    tool = (await _tools(make_reasoner))[name]

    assert tool.input_schema == model.model_json_schema()
    assert set(tool.input_schema["properties"]) == set(model.model_fields)
    assert "arguments" not in tool.input_schema["properties"]
    assert tool.input_schema["additionalProperties"] is False


async def test_output_schema_is_the_result_model_schema(make_reasoner: ReasonerFactory) -> None:
    tools = await _tools(make_reasoner)

    for tool in tools.values():
        assert tool.output_schema is not None
        assert tool.output_schema["type"] == "object"
        assert set(tool.output_schema["properties"]) == set(M2Result.model_fields)
        assert set(tool.output_schema["required"]) >= {"tool", "status", "finish_reason"}


@pytest.mark.parametrize("allow_urls", [True, False])
async def test_annotations_say_read_only_idempotent_and_open_world_only_with_urls(
    make_reasoner: ReasonerFactory, allow_urls: bool
) -> None:
    tools = await _tools(make_reasoner, allow_urls=allow_urls)

    for tool in tools.values():
        assert tool.annotations is not None
        assert tool.annotations.read_only_hint is True
        assert tool.annotations.destructive_hint is False
        assert tool.annotations.idempotent_hint is True
        assert tool.annotations.open_world_hint is allow_urls


async def test_visual_math_result_matches_its_output_schema_and_text(
    make_reasoner: ReasonerFactory,
) -> None:
    reasoner = make_reasoner(engine=ScriptedEngine(default=MATH_REPLY))
    async with connect(reasoner) as client:
        tool = {t.name: t for t in (await client.list_tools()).tools}["visual_math_reason"]
        result = await client.call_tool(
            "visual_math_reason",
            {
                "question": "Which option is the length of the diagonal?",
                "images": [png_data_uri()],
                "choices": ["2", "3", "4", "5"],
                "max_new_tokens": 64,
            },
        )

    assert not result.is_error
    assert result.structured_content is not None
    jsonschema.validate(result.structured_content, tool.output_schema)
    assert payload_of(result) == result.structured_content
    assert result.structured_content["tool"] == "visual_math_reason"
    assert result.structured_content["choice"] == "C"
    assert result.structured_content["choice_text"] == "4"
    assert result.structured_content["images"][0]["source"] == "data"
    assert "raw_output" not in result.structured_content


async def test_spatial_result_matches_its_output_schema_and_text(
    make_reasoner: ReasonerFactory,
) -> None:
    reasoner = make_reasoner(engine=ScriptedEngine(default=SPATIAL_REPLY))
    async with connect(reasoner) as client:
        tool = {t.name: t for t in (await client.list_tools()).tools}["spatial_reason"]
        result = await client.call_tool(
            "spatial_reason",
            {"question": "How many chairs?", "images": [png_data_uri(), png_data_uri(30, 40)]},
        )

    assert not result.is_error
    assert result.structured_content is not None
    jsonschema.validate(result.structured_content, tool.output_schema)
    assert json.loads(result.content[0].text) == result.structured_content  # type: ignore[union-attr]
    assert result.structured_content["tool"] == "spatial_reason"
    assert result.structured_content["value"] == 3
    assert len(result.structured_content["images"]) == 2


async def test_raw_output_is_present_only_when_asked(make_reasoner: ReasonerFactory) -> None:
    reasoner = make_reasoner(engine=ScriptedEngine(default=MATH_REPLY))
    async with connect(reasoner) as client:
        result = await client.call_tool(
            "visual_math_reason", {"question": "What is 2+2?", "include_raw": True}
        )

    assert result.structured_content is not None
    assert result.structured_content["raw_output"] == MATH_REPLY
    assert payload_of(result) == result.structured_content


async def test_calls_from_several_clients_share_one_reasoner(
    make_reasoner: ReasonerFactory,
) -> None:
    reasoner = make_reasoner()
    async with connect(reasoner) as first, connect(reasoner) as second:
        a = await first.call_tool("visual_math_reason", {"question": "one"})
        b = await second.call_tool("visual_math_reason", {"question": "two"})

    assert not a.is_error and not b.is_error


async def test_a_bearer_token_guards_http_only(make_reasoner: ReasonerFactory) -> None:
    async with connect(make_reasoner(auth_token="s3cret")) as client:
        result = await client.call_tool("visual_math_reason", {"question": "q"})

    assert not result.is_error


async def test_an_answer_matching_no_option_is_no_answer_with_the_no_choice_flag(
    make_reasoner: ReasonerFactory,
) -> None:
    reply = "<think>\nIt is about 9.\n</think>\n<answer>\n\\boxed{9}\n</answer>"
    reasoner = make_reasoner(engine=ScriptedEngine(default=reply))
    async with connect(reasoner) as client:
        tool = {t.name: t for t in (await client.list_tools()).tools}["visual_math_reason"]
        result = await client.call_tool(
            "visual_math_reason", {"question": "Which?", "choices": ["2", "3", "4", "5"]}
        )

    assert not result.is_error
    content = result.structured_content
    assert content is not None
    jsonschema.validate(content, tool.output_schema)
    assert (content["status"], content["choice"], content["answer"]) == ("no_answer", None, "9")
    assert "no_choice" in content["flags"]


async def test_results_carry_the_parser_flags(make_reasoner: ReasonerFactory) -> None:
    reply = "<answer>\\boxed{4} then \\boxed{5}</answer>"
    async with connect(make_reasoner(engine=ScriptedEngine(default=reply))) as client:
        result = await client.call_tool("visual_math_reason", {"question": "q"})

    assert result.structured_content is not None
    assert result.structured_content["status"] == "ok"
    assert {"no_think", "multiple_boxes"} <= set(result.structured_content["flags"])
    assert "flags" in result.structured_content and payload_of(result) == result.structured_content


async def test_model_id_of_a_local_checkpoint_is_its_directory_name(
    make_reasoner: ReasonerFactory, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "srv" / "models" / "M2-Local"
    checkpoint.mkdir(parents=True)
    engine = ScriptedEngine(model_id=str(checkpoint))
    async with connect(make_reasoner(engine=engine, model=str(checkpoint))) as client:
        result = await client.call_tool("visual_math_reason", {"question": "q"})
        status = json.loads((await client.read_resource(STATUS_URI)).contents[0].text)  # type: ignore[union-attr]

    assert result.structured_content is not None
    assert result.structured_content["model"]["id"] == "M2-Local"
    assert str(tmp_path) not in json.dumps(result.structured_content)
    assert status["model"] == "M2-Local"


async def test_model_id_of_a_hub_model_is_the_hub_id(make_reasoner: ReasonerFactory) -> None:
    engine = ScriptedEngine(model_id="inclusionAI/M2-Reasoning")
    reasoner = make_reasoner(engine=engine, model="inclusionAI/M2-Reasoning")
    async with connect(reasoner) as client:
        result = await client.call_tool("visual_math_reason", {"question": "q"})

    assert result.structured_content is not None
    assert result.structured_content["model"]["id"] == "inclusionAI/M2-Reasoning"
