"""The LangChain tools: contract JSON out, contract errors as ToolException, core schemas in."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool, BaseToolkit, ToolException
from langchain_core.utils.function_calling import convert_to_openai_tool

import integrations.langchain as lc
from integrations.langchain import M2ReasoningToolkit, SpatialReasonTool, VisualMathReasonTool
from m2_tools import TOOLS, ImageNotAllowed, M2Reasoner, Settings
from m2_tools.testing import ScriptedEngine

RESULT_FIELDS = {
    "tool",
    "answer",
    "choice",
    "choice_text",
    "value",
    "rationale",
    "rationale_truncated",
    "status",
    "flags",
    "confidence",
    "votes",
    "finish_reason",
    "model",
    "usage",
    "timings_ms",
    "images",
}


def call(tool: BaseTool, args: dict[str, Any], call_id: str = "call-1") -> ToolMessage:
    message = tool.invoke({"type": "tool_call", "name": tool.name, "id": call_id, "args": args})
    assert isinstance(message, ToolMessage)
    return message


def error_of(message: ToolMessage) -> dict[str, Any]:
    assert message.status == "error"
    assert isinstance(message.content, str)
    payload = json.loads(message.content)
    assert set(payload) == {"error"}
    assert set(payload["error"]) == {"code", "message", "retryable"}
    error: dict[str, Any] = payload["error"]
    return error


def test_public_api_is_pinned() -> None:
    assert lc.__all__ == ["M2ReasoningToolkit", "SpatialReasonTool", "VisualMathReasonTool"]


def test_toolkit_is_a_langchain_toolkit_of_both_tools(reasoner: M2Reasoner) -> None:
    toolkit = M2ReasoningToolkit(reasoner=reasoner)

    tools = toolkit.get_tools()

    assert isinstance(toolkit, BaseToolkit)
    assert [type(tool) for tool in tools] == [VisualMathReasonTool, SpatialReasonTool]
    assert [tool.name for tool in tools] == ["visual_math_reason", "spatial_reason"]
    assert all(tool.reasoner is reasoner for tool in tools)  # type: ignore[attr-defined]


@pytest.mark.parametrize("tool_class", [VisualMathReasonTool, SpatialReasonTool])
def test_tool_schema_is_the_core_input_model(
    tool_class: type[VisualMathReasonTool | SpatialReasonTool], reasoner: M2Reasoner
) -> None:
    tool = tool_class(reasoner=reasoner)
    spec = TOOLS[tool.name]  # type: ignore[index]
    core = spec.input_model.model_json_schema()

    assert tool.description == spec.description
    assert tool.args_schema is spec.input_model
    assert tool.get_input_schema() is spec.input_model
    assert tool.tool_call_schema.model_json_schema() == core

    function = convert_to_openai_tool(tool)["function"]
    parameters = function["parameters"]
    assert (function["name"], function["description"]) == (spec.name, spec.description)
    assert list(parameters["properties"]) == list(spec.input_model.model_fields)
    assert parameters["required"] == core["required"]
    assert parameters["additionalProperties"] is False
    for name, field in parameters["properties"].items():
        expected = {key: value for key, value in core["properties"][name].items() if key != "title"}
        assert field == expected, name


def test_result_reaches_the_model_as_the_contract_json(
    reasoner: M2Reasoner, images_dir: Path
) -> None:
    tool = VisualMathReasonTool(reasoner=reasoner)
    args: dict[str, Any] = {
        "question": "A rhombus has diagonals 6 and 8. What is its side length?",
        "images": [str(images_dir / "rhombus.png")],
    }

    message = call(tool, args)

    assert message.status == "success"
    assert isinstance(message.content, str)
    payload = json.loads(message.content)
    assert message.artifact == payload
    assert message.content == json.dumps(message.artifact, ensure_ascii=False)
    assert set(payload) == RESULT_FIELDS
    expected = reasoner.visual_math_reason(**args).to_payload()
    assert {k: v for k, v in payload.items() if k != "timings_ms"} == {
        k: v for k, v in expected.items() if k != "timings_ms"
    }
    assert payload["tool"] == "visual_math_reason"
    assert (payload["answer"], payload["value"], payload["status"]) == ("5", 5, "ok")
    assert payload["images"][0]["source"] == "path"
    assert (payload["images"][0]["width"], payload["images"][0]["height"]) == (355, 231)


async def test_async_call_returns_the_same_contract_json(
    reasoner: M2Reasoner, images_dir: Path
) -> None:
    tool = SpatialReasonTool(reasoner=reasoner)
    args: dict[str, Any] = {
        "question": "Which object is closer to the camera?",
        "images": [str(images_dir / "scene.jpg")],
        "choices": ["the chair", "the box"],
    }

    message = await tool.ainvoke({"type": "tool_call", "name": tool.name, "id": "c", "args": args})

    assert isinstance(message, ToolMessage)
    assert message.status == "success"
    payload = json.loads(message.content)  # type: ignore[arg-type]
    assert payload == message.artifact
    assert payload["tool"] == "spatial_reason"
    assert (payload["choice"], payload["choice_text"]) == ("B", "the box")


def test_raw_output_is_present_only_when_asked_for(reasoner: M2Reasoner) -> None:
    tool = VisualMathReasonTool(reasoner=reasoner)

    plain = json.loads(call(tool, {"question": "What is 6 times 7?"}).content)  # type: ignore[arg-type]
    raw = json.loads(
        call(tool, {"question": "What is 6 times 7?", "include_raw": True}).content  # type: ignore[arg-type]
    )

    assert "raw_output" not in plain
    assert "\\boxed{42}" in raw["raw_output"]


def test_plain_string_input_is_the_question(reasoner: M2Reasoner) -> None:
    content = VisualMathReasonTool(reasoner=reasoner).invoke("What is 6 times 7?")

    assert json.loads(content)["value"] == 42


def test_path_outside_allowed_dirs_is_an_error_message_with_contract_json(
    reasoner: M2Reasoner, images_dir: Path, tmp_path: Path
) -> None:
    outside = shutil.copy(images_dir / "rhombus.png", tmp_path / "rhombus.png")
    tool = VisualMathReasonTool(reasoner=reasoner)

    message = call(tool, {"question": "What is the area?", "images": [str(outside)]})

    error = error_of(message)
    assert (error["code"], error["retryable"]) == ("image_not_allowed", False)
    assert message.artifact is None


@pytest.mark.parametrize(
    ("tool_class", "args"),
    [
        (VisualMathReasonTool, {"question": "What is 2+2?", "samples": 99}),
        (VisualMathReasonTool, {"question": ""}),
        (VisualMathReasonTool, {"question": "What is 2+2?", "temperature": 0.1}),
        (SpatialReasonTool, {"question": "How many chairs are there?"}),
        (SpatialReasonTool, {"images": ["scene.jpg"]}),
    ],
    ids=["out-of-range", "empty-question", "unknown-field", "no-images", "no-question"],
)
def test_schema_invalid_arguments_are_an_invalid_argument_error(
    tool_class: type[VisualMathReasonTool | SpatialReasonTool],
    args: dict[str, Any],
    reasoner: M2Reasoner,
) -> None:
    error = error_of(call(tool_class(reasoner=reasoner), args))

    assert (error["code"], error["retryable"]) == ("invalid_argument", False)


def test_without_error_handling_the_tool_raises_tool_exception_with_contract_json(
    reasoner: M2Reasoner, images_dir: Path, tmp_path: Path
) -> None:
    outside = shutil.copy(images_dir / "scene.jpg", tmp_path / "scene.jpg")
    tool = SpatialReasonTool(reasoner=reasoner, handle_tool_error=False)

    with pytest.raises(ToolException) as caught:
        tool.invoke({"question": "How many chairs?", "images": [str(outside)]})

    assert json.loads(str(caught.value))["error"]["code"] == "image_not_allowed"
    assert isinstance(caught.value.__cause__, ImageNotAllowed)


async def test_model_that_cannot_load_is_reported_to_the_agent_as_model_unavailable() -> None:
    engine = ScriptedEngine(load_error=OSError("no weights"))
    with M2Reasoner(Settings(model="scripted"), engine=engine) as broken:
        tool = VisualMathReasonTool(reasoner=broken)

        message = await tool.ainvoke(
            {"type": "tool_call", "name": tool.name, "id": "c", "args": {"question": "2+2?"}}
        )

    error = error_of(message)
    assert (error["code"], error["retryable"]) == ("model_unavailable", False)


def test_from_model_configures_a_lazy_reasoner(fixture_dir: Path) -> None:
    checkpoint = str(fixture_dir / "checkpoint")

    with M2ReasoningToolkit.from_model(checkpoint, device="cpu", dtype="float32") as toolkit:
        settings = toolkit.reasoner.settings
        state = toolkit.reasoner.status().state

    assert (settings.model, settings.device, settings.dtype) == (checkpoint, "cpu", "float32")
    assert state == "idle"


def test_from_settings_applies_overrides_to_the_given_settings(images_dir: Path) -> None:
    base = Settings(model="scripted", device="cpu", allow_urls=False)

    with M2ReasoningToolkit.from_settings(
        base, engine=ScriptedEngine(), allowed_dirs=(images_dir,)
    ) as toolkit:
        settings = toolkit.reasoner.settings
        content = toolkit.get_tools()[0].invoke(
            {"question": "How many sides?", "images": [str(images_dir / "rhombus.png")]}
        )

    assert (settings.device, settings.allow_urls) == ("cpu", False)
    assert settings.allowed_dirs == (images_dir.resolve(),)
    assert json.loads(content)["model"]["backend"] == "scripted"


def test_core_imports_without_langchain() -> None:
    code = (
        "import sys, m2_tools, m2_tools.testing\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'langchain', 'langchain_core', 'langgraph'})\n"
        "assert not loaded, loaded\n"
    )

    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_an_answer_matching_no_option_reaches_the_agent_as_no_answer(
    reasoner: M2Reasoner, images_dir: Path
) -> None:
    # The script answers 5; none of these options is 5.
    tool = VisualMathReasonTool(reasoner=reasoner)
    args: dict[str, Any] = {
        "question": "A rhombus has diagonals 6 and 8. What is its side length?",
        "images": [str(images_dir / "rhombus.png")],
        "choices": ["3", "4", "6", "7"],
    }

    message = call(tool, args)

    assert message.status == "success"
    payload = message.artifact
    assert (payload["status"], payload["choice"], payload["answer"]) == ("no_answer", None, "5")
    assert "no_choice" in payload["flags"]
