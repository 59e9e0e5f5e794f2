"""LangChain's MCP adapter (``langchain.mcp``) drives ``m2-tools serve`` over stdio.

The server is a real subprocess running the native engine on the tiny fixture
checkpoint, so this proves the whole route an agent takes when it loads our tools
from MCP instead of from :mod:`integrations.langchain`.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from fastmcp.client.transports import StdioTransport
from langchain_core._api import suppress_langchain_beta_warning
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from integrations.langchain import M2ReasoningToolkit
from m2_tools import M2Reasoner

REPO_ROOT = Path(__file__).parents[2]
CHECKPOINT = Path("tests/fixtures/m2-tiny-reference/checkpoint")
IMAGES = Path("tests/fixtures/m2-tiny-reference/images")
CALL_TIMEOUT_S = 120

# Why: every result field the contract lists, raw_output excluded (not asked for).
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


def serve_command() -> list[str]:
    """``m2-tools serve`` from this interpreter's environment, on the tiny checkpoint."""
    script = Path(sys.executable).parent / "m2-tools"
    launcher = [str(script)] if script.exists() else [sys.executable, "-m", "m2_tools.cli"]
    model = ["--model", str(CHECKPOINT), "--device", "cpu", "--dtype", "float32"]
    return [*launcher, "serve", *model]


# Why: one server (and one model load) for the module; its tests share the event loop.
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def mcp_tools(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, BaseTool]]:
    """The server's tools as loaded by ``langchain.mcp.MCPAdapter``, by name."""
    # Why: the namespace warns once on import that it is in beta; warnings are errors here.
    with suppress_langchain_beta_warning():
        from langchain.mcp import MCPAdapter

    command, *args = serve_command()
    transport = StdioTransport(
        command=command,
        args=args,
        env={
            # Why: the server must run this checkout, whatever an installed copy resolves to.
            "PYTHONPATH": str(REPO_ROOT),
            "M2_LOG_LEVEL": "INFO",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
        },
        cwd=str(REPO_ROOT),
        log_file=tmp_path_factory.mktemp("mcp") / "server.log",
    )
    try:
        async with MCPAdapter(transport) as adapter:
            tools = await asyncio.wait_for(adapter.list_tools(), CALL_TIMEOUT_S)
        yield {tool.name: tool for tool in tools}
    finally:
        await transport.close()  # type: ignore[no-untyped-call]


async def call(tool: BaseTool, call_id: str, **args: Any) -> ToolMessage:
    tool_call = {"type": "tool_call", "id": call_id, "name": tool.name, "args": args}
    message = await asyncio.wait_for(tool.ainvoke(tool_call), CALL_TIMEOUT_S)
    assert isinstance(message, ToolMessage)
    return message


def text_of(message: ToolMessage) -> str:
    """The message's text: MCP tools return content blocks rather than a string."""
    if isinstance(message.content, str):
        return message.content
    texts = [b["text"] for b in message.content if isinstance(b, dict) and b["type"] == "text"]
    assert len(texts) == 1, message.content
    text: str = texts[0]
    return text


async def test_mcp_adapter_returns_the_structured_result_from_the_served_model(
    mcp_tools: dict[str, BaseTool],
) -> None:
    assert set(mcp_tools) == {"visual_math_reason", "spatial_reason"}

    message = await call(
        mcp_tools["visual_math_reason"],
        "math",
        question="The rhombus has diagonals 6 and 8. What is its side length?",
        images=[str(IMAGES / "rhombus.png")],
        max_new_tokens=16,
    )

    assert message.status == "success"
    assert isinstance(message.artifact, dict)
    result = message.artifact["structured_content"]
    assert json.loads(text_of(message)) == result
    assert set(result) == RESULT_FIELDS
    assert result["tool"] == "visual_math_reason"
    assert result["status"] in {"ok", "no_answer", "truncated", "ambiguous"}
    assert result["finish_reason"] in {"stop", "length"}
    assert result["model"]["backend"].startswith("m2-native")
    assert 0 < result["usage"]["completion_tokens"] <= 16
    assert result["usage"]["image_tokens"] > 0
    image = result["images"][0]
    assert (image["source"], image["width"], image["height"]) == ("path", 355, 231)


async def test_mcp_adapter_runs_spatial_reason_on_a_scene(mcp_tools: dict[str, BaseTool]) -> None:
    message = await call(
        mcp_tools["spatial_reason"],
        "space",
        question="Which object is closer to the camera?",
        images=[str(IMAGES / "scene.jpg")],
        choices=["the chair", "the box"],
        max_new_tokens=16,
    )

    assert message.status == "success"
    result = json.loads(text_of(message))
    assert result == message.artifact["structured_content"]
    assert result["tool"] == "spatial_reason"
    assert (result["images"][0]["width"], result["images"][0]["height"]) == (480, 320)


async def test_mcp_adapter_shows_the_agent_the_contract_error_json(
    mcp_tools: dict[str, BaseTool], tmp_path: Path
) -> None:
    outside = shutil.copy(REPO_ROOT / IMAGES / "rhombus.png", tmp_path / "rhombus.png")

    message = await call(
        mcp_tools["visual_math_reason"], "outside", question="Area?", images=[str(outside)]
    )

    assert message.status == "error"
    error = json.loads(text_of(message))["error"]
    assert (error["code"], error["retryable"]) == ("image_not_allowed", False)


async def test_mcp_and_native_langchain_tools_show_the_model_the_same_schema(
    mcp_tools: dict[str, BaseTool], reasoner: M2Reasoner
) -> None:
    native = {tool.name: tool for tool in M2ReasoningToolkit(reasoner=reasoner).get_tools()}

    for name, tool in mcp_tools.items():
        over_mcp = convert_to_openai_tool(tool)["function"]
        direct = convert_to_openai_tool(native[name])["function"]
        assert over_mcp["description"] == direct["description"]
        assert over_mcp["parameters"]["properties"] == direct["parameters"]["properties"]
        assert over_mcp["parameters"]["required"] == direct["parameters"]["required"]
