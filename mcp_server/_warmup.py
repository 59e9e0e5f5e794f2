"""Starting the model load in the background once the server is idle after it starts.

Why not at once: importing torch holds the GIL for long stretches (up to a second on
a busy CPU). Begun together with the client's handshake, it would stall
``initialize`` and ``tools/list``. So the load starts when no message has been
handled for a moment; a tool call that arrives first starts it at once (the core
does that).
"""

from __future__ import annotations

import time
from typing import Any

import anyio
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext

from m2_tools.reasoner import M2Reasoner

__all__ = ["QUIET_S", "LoadWhenIdle"]

#: How long the server must be idle before the load starts.
QUIET_S = 0.3


class LoadWhenIdle:
    """Server middleware that watches traffic, plus the task that starts the load.

    Args:
        reasoner: The service whose model to load.
        quiet_s: Idle time that must pass first.
    """

    def __init__(self, reasoner: M2Reasoner, quiet_s: float = QUIET_S) -> None:
        self._reasoner = reasoner
        self._quiet_s = quiet_s
        self._in_flight = 0
        self._last_activity = time.monotonic()

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        self._in_flight += 1
        try:
            return await call_next(ctx)
        finally:
            self._in_flight -= 1
            self._last_activity = time.monotonic()

    async def start_when_idle(self) -> None:
        """Wait until no message was handled for ``quiet_s``, then start loading."""
        while True:
            idle = time.monotonic() - self._last_activity
            if self._in_flight == 0 and idle >= self._quiet_s:
                self._reasoner.start_loading()
                return
            await anyio.sleep(max(self._quiet_s - idle, 0.01))
