"""The MCP server: the two tools, the status resource and the lifespan, over one M2Reasoner.

A thin adapter. The core validates the arguments, runs the model and defines every
error; this module publishes the core's schemas and maps results and errors onto
MCP:

- a result becomes ``structuredContent`` plus the same JSON as text;
- an :class:`~m2_tools.errors.M2Error` becomes an error result (``isError: true``)
  whose text is the contract JSON ``{"error": {"code", "message", "retryable"}}``;
- a call to a tool that does not exist gets the contract's ``invalid_argument`` the
  same way (the caller chose a wrong name: a smarter model could have avoided it);
- anything else becomes the contract's ``internal`` error; its details go to the log.

Calls run under :class:`~mcp_server._inflight.InFlight`, which ends them with
``cancelled`` when the server shuts down or their HTTP caller goes away.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Annotated, Any

import anyio
from mcp.server.auth.settings import AuthSettings
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, func_metadata
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import model_validator

from m2_tools import __version__
from m2_tools.catalog import TOOLS, ToolSpec
from m2_tools.errors import InternalError, InvalidArgument, M2Error
from m2_tools.reasoner import M2Reasoner
from m2_tools.redaction import without_paths
from m2_tools.schemas import M2Result
from m2_tools.serving.progress import ProgressEvent
from m2_tools.settings import Settings
from mcp_server._auth import StaticTokenVerifier
from mcp_server._inflight import InFlight, error_result
from mcp_server._warmup import LoadWhenIdle

__all__ = ["STATUS_URI", "create_server"]

logger = logging.getLogger(__name__)

STATUS_URI = "m2://status"

_INSTRUCTIONS = (
    "M2-Reasoning-7B as tools. Use `visual_math_reason` for math, geometry, chart and logic "
    "problems (usually about an image) and `spatial_reason` for questions about the 3-D layout "
    "of a scene seen in one or more images. Calls are slow (a 7B vision-language model); an "
    "error result carries JSON with `code` and `retryable`: retry `model_loading`, `busy` and "
    f"`timeout` after a pause. `{STATUS_URI}` reports whether the model is loaded."
)

# Why: the SDK's bearer-token settings require an OAuth issuer URL, but a static token has
# none. It is never published: there is no authorization provider and no resource metadata.
_STATIC_TOKEN_ISSUER = "http://localhost/m2-tools"


class _RawArguments(ArgModelBase):
    """Hands the call's arguments object to the tool unchanged.

    The core validates it, so a bad argument ends in the contract's
    ``invalid_argument`` rather than in an SDK message.
    """

    arguments: dict[str, Any]

    @model_validator(mode="before")
    @classmethod
    def _wrap(cls, data: Any) -> Any:
        return {"arguments": data}


class _ProgressScale:
    """Maps the core's progress phases onto one increasing MCP progress scale.

    Loading and queueing stay below 1; generation counts tokens (of the whole token
    budget, samples included), so the first token already passes any loading report.
    Reports that would not increase the value are dropped, as MCP requires.
    """

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._last = -1.0

    async def report(self, event: ProgressEvent) -> None:
        if event.phase == "generating":
            value, total = float(event.done), event.total
        else:
            fraction = event.done / event.total if event.total else 0.0
            value, total = min(max(fraction, 0.0), 0.99), None
        if value <= self._last:
            return
        self._last = value
        await self._ctx.report_progress(value, total, without_paths(event.message))


class _UnknownToolGuard:
    """Server middleware: a call to a tool that does not exist gets ``invalid_argument``.

    The SDK would answer with plain text (``Unknown tool: …``), which is neither the
    contract's error JSON nor a protocol error.
    """

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        params = ctx.params
        if ctx.method == "tools/call" and isinstance(params, Mapping):
            name = params.get("name")
            if isinstance(name, str) and name not in TOOLS:
                known = " and ".join(TOOLS)
                logger.info("call to unknown tool %r refused", name[:80])
                return error_result(
                    InvalidArgument(f"unknown tool {name[:80]!r}; this server has {known}")
                )
        return await call_next(ctx)


def _success_result(result: M2Result) -> CallToolResult:
    payload = result.to_payload()
    text = json.dumps(payload, ensure_ascii=False)
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=payload)


async def _call_tool(
    reasoner: M2Reasoner, name: str, arguments: dict[str, Any], ctx: Context
) -> CallToolResult:
    """Run one tool call; every failure becomes a contract error result.

    Cancellation (``notifications/cancelled``) is not caught: it cancels the awaiting
    task, which makes the core stop the generation and free its queue slot.
    """
    try:
        result = await reasoner.arun_tool(name, arguments, progress=_ProgressScale(ctx).report)
    except M2Error as exc:
        logger.info("%s failed: %s (%s)", name, exc.code, exc.message)
        return error_result(exc)
    except Exception:
        logger.exception("%s failed unexpectedly", name)
        return error_result(InternalError("unexpected server error; the details are in the log"))
    return _success_result(result)


def _tool(
    spec: ToolSpec, reasoner: M2Reasoner, annotations: ToolAnnotations, inflight: InFlight
) -> Tool:
    """Publish one catalog tool: the core model's input schema, the result model's output schema."""
    name = spec.name

    async def call(arguments: dict[str, Any], ctx: Context) -> Annotated[CallToolResult, M2Result]:
        return await inflight.run(
            lambda: _call_tool(reasoner, name, arguments, ctx), ctx.request_context.request
        )

    metadata = func_metadata(call, skip_names=["ctx"])  # the return annotation: outputSchema
    metadata.arg_model = _RawArguments
    return Tool(
        fn=call,
        name=name,
        title=spec.title,
        description=spec.description,
        parameters=spec.input_model.model_json_schema(),
        fn_metadata=metadata,
        is_async=True,
        context_kwarg="ctx",
        annotations=annotations,
    )


def create_server(
    reasoner: M2Reasoner,
    *,
    settings: Settings | None = None,
    load_on_start: bool = True,
    inflight: InFlight | None = None,
) -> MCPServer:
    """Build the MCP server over ``reasoner``.

    The server answers ``initialize`` and ``tools/list`` at once; the model loads
    in a background thread, started as soon as the server is idle after it starts
    (or on the first call with ``load_on_start=False``). The caller keeps ownership
    of ``reasoner`` and closes it after the server stops.

    Args:
        reasoner: The service that runs the tools.
        settings: What the adapter reads (URL fetching for the tools' open-world
            hint, the bearer token for HTTP); ``reasoner.settings`` when omitted.
        load_on_start: Start loading the model right after the server starts.
        inflight: The registry of calls in flight, for a caller that stops the server
            gracefully (see :meth:`~mcp_server._inflight.InFlight.drain`).

    Returns:
        The server, ready for ``run_stdio_async()`` or ``streamable_http_app()``.
    """
    settings = settings if settings is not None else reasoner.settings
    inflight = inflight if inflight is not None else InFlight()
    warmup = LoadWhenIdle(reasoner)

    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[None]:
        async with anyio.create_task_group() as tasks:
            if load_on_start:
                tasks.start_soon(warmup.start_when_idle)
            yield
            tasks.cancel_scope.cancel()

    annotations = ToolAnnotations(
        read_only_hint=True,
        destructive_hint=False,
        idempotent_hint=True,
        open_world_hint=settings.allow_urls,
    )
    auth: dict[str, Any] = {}
    if settings.auth_token:
        auth = {
            "token_verifier": StaticTokenVerifier(settings.auth_token),
            "auth": AuthSettings(issuer_url=_STATIC_TOKEN_ISSUER, resource_server_url=None),
        }
    server: MCPServer = MCPServer(
        "m2-tools",
        title="M2-Reasoning tools",
        instructions=_INSTRUCTIONS,
        version=__version__,
        tools=[_tool(spec, reasoner, annotations, inflight) for spec in TOOLS.values()],
        lifespan=lifespan,
        middleware=[warmup, _UnknownToolGuard()],
        log_level=_sdk_log_level(settings.log_level),
        **auth,
    )

    @server.resource(
        STATUS_URI,
        name="status",
        title="M2 service status",
        description="Model id, state (idle, loading, ready, failed) with the reason of a "
        "failure, device, queue depth and cache counters.",
        mime_type="application/json",
    )
    async def status() -> str:
        return reasoner.status().model_dump_json()

    return server


def _sdk_log_level(level: str) -> Any:
    """The SDK's log level from ours (it accepts only the five standard names)."""
    upper = level.upper()
    return upper if upper in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"} else "WARNING"
