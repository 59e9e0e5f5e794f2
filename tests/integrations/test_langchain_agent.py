"""A full ``create_agent`` loop over the toolkit, with a scripted tool-calling chat model."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from langchain.agents import create_agent
from langchain_core.language_models import LanguageModelInput
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field

from integrations.langchain import M2ReasoningToolkit
from m2_tools import TOOLS, M2Reasoner


class ToolCallingFakeModel(GenericFakeChatModel):
    """Replays scripted AI messages (tool calls included) and records the tools it was bound."""

    bound_tools: list[dict[str, Any]] = Field(default_factory=list)

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        self.bound_tools = [convert_to_openai_tool(tool) for tool in tools]
        return self


def tool_call(call_id: str, name: str, **args: Any) -> dict[str, Any]:
    return {"type": "tool_call", "id": call_id, "name": name, "args": args}


def tool_messages(messages: Sequence[BaseMessage]) -> dict[str, ToolMessage]:
    return {m.tool_call_id: m for m in messages if isinstance(m, ToolMessage)}


def scripted_turns(images_dir: Path, outside: Path) -> list[AIMessage]:
    rhombus, scene = str(images_dir / "rhombus.png"), str(images_dir / "scene.jpg")
    return [
        AIMessage(
            content="",
            tool_calls=[
                tool_call(
                    "math",
                    "visual_math_reason",
                    question="The rhombus has diagonals 6 and 8. What is its side length?",
                    images=[rhombus],
                ),
                tool_call(
                    "space",
                    "spatial_reason",
                    question="Which object is closer to the camera?",
                    images=[scene],
                    choices=["the chair", "the box"],
                ),
            ],
        ),
        AIMessage(
            content="",
            tool_calls=[
                tool_call("outside", "visual_math_reason", question="Area?", images=[str(outside)]),
                tool_call("bad-args", "spatial_reason", question="How many chairs?", samples=99),
            ],
        ),
        AIMessage(content="The side is 5 and the box is closer."),
    ]


async def test_agent_calls_both_tools_and_reads_results_and_errors_as_json(
    reasoner: M2Reasoner, images_dir: Path, tmp_path: Path
) -> None:
    outside = Path(shutil.copy(images_dir / "rhombus.png", tmp_path / "rhombus.png"))
    model = ToolCallingFakeModel(messages=iter(scripted_turns(images_dir, outside)))
    toolkit = M2ReasoningToolkit(reasoner=reasoner)
    agent = create_agent(model, toolkit.get_tools())

    state = await agent.ainvoke({"messages": [{"role": "user", "content": "Solve both."}]})

    assert state["messages"][-1].content == "The side is 5 and the box is closer."
    replies = tool_messages(state["messages"])
    assert set(replies) == {"math", "space", "outside", "bad-args"}

    math, space = replies["math"], replies["space"]
    assert (math.status, space.status) == ("success", "success")
    for reply in (math, space):
        assert isinstance(reply.content, str)
        assert json.loads(reply.content) == reply.artifact
    assert (math.artifact["tool"], math.artifact["value"], math.artifact["status"]) == (
        "visual_math_reason",
        5,
        "ok",
    )
    assert (space.artifact["choice"], space.artifact["choice_text"]) == ("B", "the box")

    for call_id, code in (("outside", "image_not_allowed"), ("bad-args", "invalid_argument")):
        reply = replies[call_id]
        assert reply.status == "error"
        error = json.loads(reply.content)["error"]  # type: ignore[arg-type]
        assert (error["code"], error["retryable"]) == (code, False)

    functions = {tool["function"]["name"]: tool["function"] for tool in model.bound_tools}
    for name, spec in TOOLS.items():
        properties = functions[name]["parameters"]["properties"]
        assert list(properties) == list(spec.input_model.model_fields)


def test_sync_agent_loop_gets_the_result_artifact(reasoner: M2Reasoner, images_dir: Path) -> None:
    turns = [*scripted_turns(images_dir, images_dir)[:1], AIMessage(content="done")]
    agent = create_agent(
        ToolCallingFakeModel(messages=iter(turns)),
        M2ReasoningToolkit(reasoner=reasoner).get_tools(),
    )

    state = agent.invoke({"messages": [{"role": "user", "content": "Solve both."}]})

    replies = tool_messages(state["messages"])
    assert [replies[i].artifact["tool"] for i in ("math", "space")] == [
        "visual_math_reason",
        "spatial_reason",
    ]
