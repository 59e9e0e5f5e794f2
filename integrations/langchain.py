"""LangChain tools for M2-Reasoning: ``visual_math_reason`` and ``spatial_reason``.

A thin translator over :class:`m2_tools.M2Reasoner`. The core input models are the
tools' ``args_schema``; a call returns ``(content, artifact)`` where the content is
the contract result JSON and the artifact the same result as a dict. Every contract
error (:class:`m2_tools.M2Error`) becomes a ``ToolException`` whose message is the
contract error JSON; with the default ``handle_tool_error=True`` an agent reads
that JSON as a ``ToolMessage`` with ``status="error"`` and can correct its call.
Arguments that do not fit the schema become the same ``invalid_argument`` JSON.

Example::

    from langchain.agents import create_agent
    from integrations.langchain import M2ReasoningToolkit

    toolkit = M2ReasoningToolkit.from_model("inclusionAI/M2-Reasoning", device="cuda")
    agent = create_agent("openai:gpt-5", toolkit.get_tools())
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

from langchain_core.tools import BaseTool, BaseToolkit, ToolException
from pydantic import BaseModel, ConfigDict, ValidationError

from m2_tools import (
    TOOLS,
    InvalidArgument,
    M2Error,
    M2Reasoner,
    M2Result,
    Settings,
    SpatialReasonInput,
    VisualMathReasonInput,
)
from m2_tools.engines.base import Engine

__all__ = ["M2ReasoningToolkit", "SpatialReasonTool", "VisualMathReasonTool"]

#: The tool output: the result JSON for the model, and the result dict as artifact.
ToolOutput = tuple[str, dict[str, Any]]


@contextmanager
def _contract_errors() -> Iterator[None]:
    """Re-raise a contract error as a ``ToolException`` carrying its JSON."""
    try:
        yield
    except M2Error as error:
        raise ToolException(error.to_json()) from error


def _tool_output(result: M2Result) -> ToolOutput:
    payload = result.to_payload()
    # Why: the same text as the MCP server sends; non-ASCII answers stay readable (and short).
    return json.dumps(payload, ensure_ascii=False), payload


def _invalid_argument_json(error: Exception) -> str:
    """The ``invalid_argument`` JSON for a schema validation error, without echoing input."""
    if isinstance(error, ValidationError):
        return InvalidArgument.from_validation_error(error).to_json()
    return InvalidArgument(
        "invalid arguments: the arguments do not match the tool's schema"
    ).to_json()


class _M2Tool(BaseTool):
    """Shared behaviour of the two tools; subclasses set the name, description and schema."""

    reasoner: M2Reasoner
    """The service that runs the calls; share one between tools (it owns the model)."""

    response_format: Literal["content", "content_and_artifact"] = "content_and_artifact"
    handle_tool_error: bool | str | Callable[[ToolException], Any] | None = True
    handle_validation_error: bool | str | Callable[[Any], str] | None = _invalid_argument_json

    @property
    def tool_call_schema(self) -> type[BaseModel]:
        """The schema the model sees: the core input model itself.

        LangChain's default rebuilds a copy of the model that drops
        ``extra="forbid"``; the core model already holds only model-facing fields.
        """
        schema = self.args_schema
        if not (isinstance(schema, type) and issubclass(schema, BaseModel)):
            raise TypeError(f"{self.name}: args_schema must be a pydantic model, not {schema!r}")
        return schema

    def _run(self, question: str, **fields: Any) -> ToolOutput:
        with _contract_errors():
            result = self.reasoner.run_tool(self.name, {"question": question, **fields})
        return _tool_output(result)

    async def _arun(self, question: str, **fields: Any) -> ToolOutput:
        with _contract_errors():
            result = await self.reasoner.arun_tool(self.name, {"question": question, **fields})
        return _tool_output(result)


class VisualMathReasonTool(_M2Tool):
    """``visual_math_reason``: math, geometry, chart and logic problems about figures.

    Args:
        reasoner: The service that runs the calls.
    """

    name: str = TOOLS["visual_math_reason"].name
    description: str = TOOLS["visual_math_reason"].description
    args_schema: type[BaseModel] = VisualMathReasonInput


class SpatialReasonTool(_M2Tool):
    """``spatial_reason``: the 3-D layout of a scene from views or video frames.

    Args:
        reasoner: The service that runs the calls.
    """

    name: str = TOOLS["spatial_reason"].name
    description: str = TOOLS["spatial_reason"].description
    args_schema: type[BaseModel] = SpatialReasonInput


class M2ReasoningToolkit(BaseToolkit):
    """Both M2-Reasoning tools over one shared :class:`~m2_tools.M2Reasoner`.

    The reasoner loads the model in the background on the first call; call
    :meth:`close` (or use the toolkit as a context manager) to release it.

    Args:
        reasoner: The service both tools call.

    Example::

        with M2ReasoningToolkit.from_model("/models/M2-Reasoning", device="cuda") as toolkit:
            agent = create_agent(chat_model, toolkit.get_tools())
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    reasoner: M2Reasoner

    @classmethod
    def from_settings(
        cls,
        settings: Settings | None = None,
        *,
        engine: Engine | None = None,
        **overrides: Any,
    ) -> M2ReasoningToolkit:
        """Build a toolkit and its reasoner from settings.

        Args:
            settings: The base settings; ``Settings()`` (the ``M2_*`` environment)
                when omitted.
            engine: An engine to use instead of the native M2 engine, such as
                :class:`m2_tools.testing.ScriptedEngine` for offline tests.
            **overrides: Settings fields that replace those of ``settings``
                (``model``, ``device``, ``dtype``, ``allowed_dirs``, ...).

        Returns:
            A toolkit owning a new reasoner.
        """
        if settings is None:
            settings = Settings(**overrides)
        elif overrides:
            settings = Settings(**{**settings.model_dump(exclude_unset=True), **overrides})
        return cls(reasoner=M2Reasoner(settings, engine=engine))

    @classmethod
    def from_model(cls, model: str, **overrides: Any) -> M2ReasoningToolkit:
        """Build a toolkit for a checkpoint directory or hub id.

        Args:
            model: A local checkpoint directory or a hub id.
            **overrides: Other settings fields (``device``, ``dtype``, ...).

        Returns:
            A toolkit owning a new reasoner.
        """
        return cls.from_settings(model=model, **overrides)

    def get_tools(self) -> list[BaseTool]:
        """Return ``visual_math_reason`` and ``spatial_reason``, sharing the reasoner."""
        return [
            VisualMathReasonTool(reasoner=self.reasoner),
            SpatialReasonTool(reasoner=self.reasoner),
        ]

    def close(self) -> None:
        """Stop the reasoner's worker and release the model."""
        self.reasoner.close()

    def __enter__(self) -> M2ReasoningToolkit:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
