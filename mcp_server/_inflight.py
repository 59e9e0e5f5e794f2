"""Tool calls in flight, and the two ways one ends early with the contract's ``cancelled``.

- **Shutdown** (SIGTERM or SIGINT): :meth:`InFlight.drain` ends every call, waits until
  each caller has its ``cancelled`` result, and only then lets the transport close, so
  no call is left with a cut stream.
- **A caller that went away** (streamable HTTP): on the 2025-06-18 wire a call's
  response travels on its POST's own event stream, and with no event store a result
  can never be delivered once that stream is closed. A closed stream therefore cancels
  the call, as the 2026 wire already does. The HTTP app marks the request's ASGI
  scope (see :data:`DISCONNECTED`) and the call watches that mark.

Ending a call cancels the task awaiting the core, which cancels its generation and
frees its queue slot.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio
from mcp.types import CallToolResult, TextContent

from m2_tools.errors import Cancelled, M2Error

__all__ = ["DISCONNECTED", "DRAIN_TIMEOUT_S", "InFlight", "error_result"]

logger = logging.getLogger(__name__)

#: ASGI scope key of an :class:`anyio.Event` set when the HTTP client disconnects.
DISCONNECTED = "m2_tools.disconnected"
#: How long a graceful stop waits for the calls in flight to hand back ``cancelled``.
DRAIN_TIMEOUT_S = 10

_DRAIN_TICK_S = 0.01


def error_result(error: M2Error) -> CallToolResult:
    """The MCP error result carrying ``error``'s contract JSON."""
    return CallToolResult(content=[TextContent(type="text", text=error.to_json())], is_error=True)


class InFlight:
    """The server's tool calls in flight, and the HTTP responses that carry them.

    Use one per server, from its event loop only.
    """

    def __init__(self) -> None:
        self._stops: set[anyio.Event] = set()
        self._stopping = False
        self._responses = 0

    @property
    def calls(self) -> int:
        """Tool calls running now."""
        return len(self._stops)

    @property
    def stopping(self) -> bool:
        """Whether the server is shutting down (new calls end at once)."""
        return self._stopping

    async def run(
        self, work: Callable[[], Awaitable[CallToolResult]], request: Any = None
    ) -> CallToolResult:
        """Run one call until it finishes, the server stops or its HTTP caller goes away.

        Args:
            work: The call; it returns a result for its own failures.
            request: The transport's request object (``request.scope`` for HTTP).
        """
        if self._stopping:
            return error_result(_shutting_down())
        stop = anyio.Event()
        gone = _disconnect_event(request)
        finished: list[CallToolResult] = []
        self._stops.add(stop)
        try:
            async with anyio.create_task_group() as tasks:

                async def call() -> None:
                    finished.append(await work())
                    tasks.cancel_scope.cancel()

                async def end_on(event: anyio.Event) -> None:
                    await event.wait()
                    tasks.cancel_scope.cancel()

                tasks.start_soon(call)
                tasks.start_soon(end_on, stop)
                if gone is not None:
                    tasks.start_soon(end_on, gone)
        finally:
            self._stops.discard(stop)
        if finished:
            return finished[0]
        if gone is not None and gone.is_set():
            logger.info("the caller disconnected; its call was cancelled")
            return error_result(Cancelled("the caller disconnected before the call finished"))
        return error_result(_shutting_down())

    def stop(self) -> None:
        """End every call in flight, and every later one, with ``cancelled``."""
        self._stopping = True
        for stop in self._stops:
            stop.set()

    @contextmanager
    def responding(self) -> Iterator[None]:
        """Count an HTTP response in progress (while one is, :meth:`drain` waits)."""
        self._responses += 1
        try:
            yield
        finally:
            self._responses -= 1

    async def drain(self, timeout_s: float) -> bool:
        """Stop every call and wait until their callers have the result.

        Args:
            timeout_s: The longest wait.

        Returns:
            True when every call and response finished in time.
        """
        self.stop()
        deadline = time.monotonic() + timeout_s
        while self._stops or self._responses:
            if time.monotonic() > deadline:
                logger.warning(
                    "shutting down with %d call(s) and %d response(s) unfinished",
                    len(self._stops),
                    self._responses,
                )
                return False
            await anyio.sleep(_DRAIN_TICK_S)
        return True


def _shutting_down() -> Cancelled:
    return Cancelled("the server is shutting down; call again once it is back")


def _disconnect_event(request: Any) -> anyio.Event | None:
    scope = getattr(request, "scope", None)
    event = scope.get(DISCONNECTED) if isinstance(scope, dict) else None
    return event if isinstance(event, anyio.Event) else None
